export { trainModel, loadScorer, loadTrainedModel, CHECKPOINT_FILE, BEST_FILE, type TrainModelOptions, type TrainModelResult, type TrainTiming } from './train-model';
export { exportItemEmbeddings, ITEM_EMBEDDINGS_FILE } from './item-embeddings';
export type { ModelSpec, TrainableModel, ModelContext, ItemFeatures, TrainableKind, OptimizerSettings } from './model-spec';
