/**
 * The trainer, loaded when a command trains and not before: \`primer study show\`, \`dna\`,
 * \`baselines\` and the search controller never load TensorFlow.js.
 */
export const loadTrainer = () => import('@primer-search/trainer-gpu');
