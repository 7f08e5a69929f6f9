// Worker-thread entry of a data-parallel pretraining replica (core/backbone/pretrain-replica.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { servePretrainReplica } from '../../core/backbone/pretrain-replica-worker';
import type { PretrainReplicaInit } from '../../core/backbone/pretrain-replica';

void servePretrainReplica(parentPort!, workerData as PretrainReplicaInit);
