// Worker-thread entry of a data-parallel training replica (core/train/replicas.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { serveReplica } from '../../core/jobs/replica-worker';
import type { ReplicaInit } from '../../core/train/replicas';

void serveReplica(parentPort!, workerData as ReplicaInit);
