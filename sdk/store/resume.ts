/**
 * HTTP Range bookkeeping for resumable downloads, as pure functions.
 * A resumed request asks for `bytes=<have>-`; the server may honour it (206 with a
 * matching Content-Range), ignore it (200: start over) or say we already have it all (416).
 */
import { WhittleError } from '../../core/errors.ts';

export function rangeHeaderFor(have: number): string | null {
  return have > 0 ? `bytes=${have}-` : null;
}

export interface ContentRange {
  start: number;
  end: number; // inclusive
  total: number | null; // null for '*'
}

/** Parses `bytes start-end/total`; null when absent or malformed. */
export function parseContentRange(header: string | null): ContentRange | null {
  if (!header) return null;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (end < start || (total !== null && end >= total)) return null;
  return { start, end, total };
}

export type ResumePlan =
  /** Append the body to the bytes we have. */
  | { kind: 'append' }
  /** Throw away what we have; the body is the whole file. */
  | { kind: 'restart' }
  /** We already have every byte. */
  | { kind: 'complete' };

/**
 * Decides what to do with a response to a (possibly ranged) request, and catches a
 * server whose idea of the file size disagrees with the manifest before any byte is kept.
 */
export function planResponse(
  file: { name: string; size: number },
  have: number,
  status: number,
  headers: { contentRange: string | null; contentLength: string | null },
): ResumePlan {
  const sizeLie = (serverSize: number) =>
    new WhittleError(
      'INTEGRITY',
      `${file.name}: the server has ${serverSize} bytes but the manifest says ${file.size}`,
      { file: file.name, expected: file.size, actual: serverSize },
    );
  if (status === 416) {
    if (have === file.size) return { kind: 'complete' };
    return { kind: 'restart' };
  }
  if (status === 206) {
    const range = parseContentRange(headers.contentRange);
    if (!range || range.start !== have) {
      // A 206 for some other range is useless to us; start over with a plain request.
      return { kind: 'restart' };
    }
    if (range.total !== null && range.total !== file.size) throw sizeLie(range.total);
    return { kind: 'append' };
  }
  if (status === 200) {
    const length = headers.contentLength === null ? null : Number(headers.contentLength);
    if (length !== null && Number.isFinite(length) && length !== file.size) throw sizeLie(length);
    return { kind: 'restart' };
  }
  throw new WhittleError('NETWORK', `${file.name}: HTTP ${status}`, { file: file.name, status });
}
