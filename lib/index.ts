export * from './core/index.js';
export * from './backends/index.js';
export * from './nest/index.js';
