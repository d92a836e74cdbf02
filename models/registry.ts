/**
 * The model registry (`models/registry.json`) as types, plus where fetched files live.
 * Node-only helpers (fs/path) live in `models/local.ts`; this file is safe anywhere.
 */
export interface RegistryFile {
  name: string;
  size: number;
  sha256: string;
  /** Upstream URL, for users with internet. Absent for the project's own (local) models. */
  url?: string;
  /** Path relative to a mirror directory (e.g. ../shared/mirror). */
  mirror?: string;
}

export interface RegistryModel {
  id: string;
  revision: string;
  kind: 'text' | 'codec' | 'data';
  format: string;
  license: string;
  description: string;
  /** For the project's own models: the folder in this repo holding the files. */
  path?: string;
  files: RegistryFile[];
}

export interface Registry {
  version: 1;
  models: RegistryModel[];
}

/** Where `npm run models` lays files out, relative to the repo root; the dev server serves it at `/models/`. */
export const SERVED_DIR = 'public/models';
/** The URL prefix those files are served under. */
export const SERVED_URL_PREFIX = '/models/';
