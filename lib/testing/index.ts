export * from './fault-proxy.js';
