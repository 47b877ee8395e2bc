// Optional accelerators the worker loads when the volunteer's machine has them
// (shared/backend.ts): not installed here, so their types are not known.
declare module '@tensorflow/tfjs-node';
declare module '@tensorflow/tfjs-node-gpu';
