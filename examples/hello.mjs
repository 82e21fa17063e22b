// The smallest corral app: a plain (req, res) handler.
export default function hello(req, res) {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from worker ${process.pid}\n`);
}
