/** Worker entry for the Lyra v2 codec: only wiring. */
import { exposeEngine } from './rpc.ts';
import { CodecService } from './codec/service.ts';

exposeEngine(new CodecService());
