/** Worker entry for text generation: only wiring. */
import { exposeEngine } from './rpc.ts';
import { TextService } from './text/service.ts';

exposeEngine(new TextService());
