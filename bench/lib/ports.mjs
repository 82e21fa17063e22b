// Free loopback port: bind port 0, read what the kernel chose, release it.
// A small race remains (someone else may take the port before the contender
// binds it); contenders fail loudly on EADDRINUSE rather than hang.
import net from 'node:net';

export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
