// Worker threads do not inherit tsx's loader (Node 20 ignores --import in a worker's execArgv):
// register it in this thread, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
