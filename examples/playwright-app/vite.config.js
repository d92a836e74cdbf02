import { defineConfig } from 'vite';
import whittle from 'whittle/vite';

/**
 * For the e2e tests only: the preview server keeps a log of the model files it served, at
 * GET /__requests, so a test can check that a seeded run made no model request.
 */
function modelRequestLog() {
  const served = [];
  return {
    name: 'model-request-log',
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.url === '/__requests') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(served));
          return;
        }
        if (req.url?.startsWith('/models/')) served.push(req.url);
        next();
      });
    },
  };
}

// COOP/COEP from the dev and preview servers: WASM runs with threads (the wasm-threads project).
export default defineConfig({ plugins: [whittle({ crossOriginIsolation: true }), modelRequestLog()] });
