export * from './core/index.js';
export * from './backends/index.js';
