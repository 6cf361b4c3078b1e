/**
 * Refusing a body while the client is still sending it. With `Connection: close` Node ends the
 * socket as soon as the answer is written; the client's bytes still in flight then reach a closed
 * socket, the kernel answers them with a reset, and a reset makes the client's kernel drop the
 * answer it had received but not yet read: the client sees ECONNRESET instead of the 413. So,
 * as HTTP/1.1 asks of a server closing early (RFC 9112, section 9.6) and as nginx's
 * `lingering_close` does, the socket is half-closed after the answer and kept a short while
 * before it is destroyed: what still arrives is read and dropped up to a small number of bytes
 * (so a client finishing a small body ends cleanly), then no longer read, which holds a client
 * that keeps sending back by TCP's own flow control at no cost, until it closes or time is up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How long, at most, a refused client's bytes are read and dropped after the answer. */
export const lingerMs = 2000;
/** How many of its bytes, at most, are read and dropped; after that they are left unread. */
export const lingerBytes = 1024 * 1024;

/**
 * Marks the answer about to be sent on `res` as the connection's last: `Connection: close`, then
 * a half-close once it is written, and the request's remaining bytes read and dropped (the first
 * `lingerBytes`, the rest left unread) until the client closes its side or `lingerMs` pass. Call
 * it before `res.end`.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse, limits: { ms?: number; bytes?: number } = {}): void {
  res.setHeader('connection', 'close');
  const socket = req.socket as Socket & { destroySoon?: () => void };
  if (socket.destroyed) return;
  // Node calls destroySoon on a connection whose last answer is written; it would destroy the
  // socket with the client's bytes unread. This socket lingers instead.
  const destroySoon = socket.destroySoon?.bind(socket);
  socket.destroySoon = () => {
    // A request read to its end leaves nothing in flight to reset the answer.
    if (req.complete && destroySoon) destroySoon();
    else linger(socket, limits.ms ?? lingerMs, limits.bytes ?? lingerBytes);
  };
}

function linger(socket: Socket, ms: number, bytes: number): void {
  let dropped = 0;
  const done = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // The client has sent all it will: nothing more can reset the answer.
  socket.once('end', done);
  // Once the answer is written, Node's parser drops the rest of the body it reads; this counts
  // what is read and stops reading past `bytes`, leaving the rest to wait in the client's buffers.
  const count = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > bytes) socket.pause();
  };
  socket.on('data', count);
  socket.resume();
  socket.end();
}
