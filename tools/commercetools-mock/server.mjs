// Runs @labdigital/commercetools-mock as a local HTTP server for the contract tests.
//
//   node server.mjs [port]        (or CTMOCK_PORT=...; 0 or nothing picks a free port)
//
// Auth and API share one origin: POST /oauth/token (client credentials, HTTP Basic) and
// /{projectKey}/... with the bearer token. Tokens are checked, like the real API; client
// credentials are not (the mock accepts any id/secret). Listens on 127.0.0.1 only and prints
// one line, "commercetools-mock ready http://127.0.0.1:<port>", once it accepts connections.
import { CommercetoolsMock } from "@labdigital/commercetools-mock";

const raw = process.argv[2] ?? process.env.CTMOCK_PORT ?? "0";
const port = Number.parseInt(raw, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	console.error(`commercetools-mock: invalid port ${JSON.stringify(raw)}`);
	process.exit(2);
}

const mock = new CommercetoolsMock({
	enableAuthentication: true,
	validateCredentials: true,
	strict: true,
	silent: process.env.CTMOCK_LOG !== "true",
});

const stop = async () => {
	await mock.app.close();
	process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

try {
	// runServer() binds 0.0.0.0; the tests only need loopback.
	await mock.app.listen({ port, host: "127.0.0.1" });
} catch (error) {
	console.error("commercetools-mock: failed to start:", error);
	process.exit(1);
}
const address = mock.app.server.address();
console.log(`commercetools-mock ready http://127.0.0.1:${address.port}`);
