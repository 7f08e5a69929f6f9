export { trainSasrec, loadSasrecScorer, CHECKPOINT_FILE, BEST_FILE, type TrainSasrecOptions, type TrainSasrecResult, type TrainTiming } from './sasrec-trainer';
export { fitPopularity, type PopularityModel } from '../models/popularity';
