// The app this image serves: any corral app (see the README) goes here with its package.json.
export default function hello(req, res) {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from worker ${process.pid}\n`);
}
