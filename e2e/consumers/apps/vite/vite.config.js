import { defineConfig } from 'vite';
import whittle from 'whittle/vite';

export default defineConfig({ plugins: [whittle({ crossOriginIsolation: true })] });
