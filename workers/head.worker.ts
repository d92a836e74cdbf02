/** Worker entry for the HeadEngine: only wiring. */
import { exposeEngine } from './rpc.ts';
import { HeadEngine } from './head/engine.ts';

exposeEngine(new HeadEngine());
