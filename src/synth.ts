// The pipeline's entry point (kept for importers): see src/synth/ for plan, apply and check.
export * from './synth/index.ts';
