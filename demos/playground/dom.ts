/** Small DOM helpers every playground module shares. */
import { WhittleError } from 'whittle';

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** An error as a person reads it: Whittle's code first (ABORTED, INVALID_ARGUMENT…), then the message. */
export const describe = (e: unknown) => (e instanceof WhittleError ? `${e.code}: ${e.message}` : String(e));

export const isAbort = (e: unknown) => e instanceof WhittleError && e.code === 'ABORTED';

/** A job's error in its status line: an abort the user asked for reads as muted, anything else as an error. */
export function showError(node: HTMLElement, e: unknown): void {
  node.textContent = describe(e);
  node.className = isAbort(e) ? 'muted' : 'error';
}

/** An element with its text and class set in one call. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', className = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with its attributes (numbers written as strings). */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
