/**
 * HTTP Range bookkeeping for resumable downloads, as pure functions.
 * A resumed request asks for `bytes=<have>-`; the server may honour it (206 with a
 * matching Content-Range), ignore it (200: start over) or say we already have it all (416).
 * Anything else that claims to be partial content (a 416 while bytes are missing, a 206 for
 * another range, a 206 of a compressed representation) is never written: the caller throws its
 * partial away and asks for the whole file once more.
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
  | { kind: 'complete' }
  /**
   * The body is not the bytes we asked for (a 416 before the end, a 206 for another range):
   * write none of it, drop the partial and request the whole file again.
   */
  | { kind: 'discard'; reason: string };

/** Whether a response body was transformed by a Content-Encoding (fetch hands over the decoded bytes). */
export function isEncoded(contentEncoding: string | null): boolean {
  return contentEncoding !== null && contentEncoding.trim() !== '' && contentEncoding.trim().toLowerCase() !== 'identity';
}

/**
 * Decides what to do with a response to a (possibly ranged) request, and catches a
 * server whose idea of the file size disagrees with the manifest before any byte is kept.
 */
export function planResponse(
  file: { name: string; size: number },
  have: number,
  status: number,
  headers: { contentRange: string | null; contentLength: string | null; contentEncoding?: string | null },
): ResumePlan {
  // With a Content-Encoding, Content-Length and Content-Range count the compressed bytes while
  // fetch() hands over decoded ones: no header says how big the body is, and the manifest's size
  // plus the sha256 of the decoded bytes are what check it.
  const encoded = isEncoded(headers.contentEncoding ?? null);
  const sizeLie = (serverSize: number) =>
    new WhittleError(
      'INTEGRITY',
      `${file.name}: the server has ${serverSize} bytes but the manifest says ${file.size}`,
      { file: file.name, expected: file.size, actual: serverSize },
    );
  if (status === 416) {
    if (have === file.size) return { kind: 'complete' };
    // Its body is an error page (nginx sends HTML), never file bytes.
    return { kind: 'discard', reason: `HTTP 416 for bytes=${have}- of a ${file.size}-byte file` };
  }
  if (status === 206) {
    // Ranges of a compressed representation cannot be decoded on their own.
    if (encoded) return { kind: 'discard', reason: `a 206 with Content-Encoding ${headers.contentEncoding}` };
    const range = parseContentRange(headers.contentRange);
    if (!range || range.start !== have) {
      return { kind: 'discard', reason: `asked for bytes from ${have}, got Content-Range ${headers.contentRange ?? '(none)'}` };
    }
    if (range.total !== null && range.total !== file.size) throw sizeLie(range.total);
    return { kind: 'append' };
  }
  if (status === 200) {
    const length = headers.contentLength === null || encoded ? null : Number(headers.contentLength);
    if (length !== null && Number.isFinite(length) && length !== file.size) throw sizeLie(length);
    return { kind: 'restart' };
  }
  throw new WhittleError('NETWORK', `${file.name}: HTTP ${status}`, { file: file.name, status });
}
