// Starts PostGraphile for the read benchmark: DATABASE_URL, HOST, PORT and WORKERS (node
// cluster processes sharing the port, as uvicorn's --workers does for the API) come from the
// environment. Prints "listening" once the first worker accepts connections.
import cluster from "node:cluster";
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import preset from "./graphile.config.mjs";

const workers = Number(process.env.WORKERS ?? "1");

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const serv = postgraphile(preset).createServ(grafserv);
  const server = createServer();
  server.on("error", (error) => {
    console.error(error);
    process.exit(1);
  });
  await serv.addTo(server);
  server.listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1", () =>
    console.log("listening"),
  );
}
