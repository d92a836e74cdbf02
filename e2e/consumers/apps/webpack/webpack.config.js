// A plain webpack 5 app: nothing Whittle-specific. Workers and onnxruntime's files are found
// through `new URL(..., import.meta.url)`, which webpack 5 understands on its own.
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './app.js',
  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), filename: 'app.js', clean: false },
  performance: { hints: false },
};
