// Runs @labdigital/commercetools-mock as a local HTTP server for the contract tests.
//
//   node server.mjs [port]        (or CTMOCK_PORT=...; 0 or nothing picks a free port)
//
// Auth and API share one origin: POST /oauth/token (client credentials, HTTP Basic) and
// /{projectKey}/... with the bearer token. Tokens are checked, like the real API; client
// credentials are not (the mock accepts any id/secret). Listens on 127.0.0.1 only and prints
// one line, "commercetools-mock ready http://127.0.0.1:<port>", once it accepts connections.
import { AsyncLocalStorage } from "node:async_hooks";
import { CommercetoolsMock, InMemoryStorage } from "@labdigital/commercetools-mock";

const raw = process.argv[2] ?? process.env.CTMOCK_PORT ?? "0";
const port = Number.parseInt(raw, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	console.error(`commercetools-mock: invalid port ${JSON.stringify(raw)}`);
	process.exit(2);
}

const storage = new InMemoryStorage();
const mock = new CommercetoolsMock({
	storage,
	enableAuthentication: true,
	validateCredentials: true,
	strict: true,
	silent: process.env.CTMOCK_LOG !== "true",
});

// Shim: the mock's query endpoints drop the `sort` parameter before reaching its storage (which
// can sort), so GET /{projectKey}/<resource>?sort=... comes back in insertion order and keyset
// paging (sort=id asc, where id > :lastId) skips and repeats resources. Hand the request's sort
// to the storage query that serves that request (same where and limit), and to no other query.
const requestSort = new AsyncLocalStorage();
mock.app.addHook("onRequest", (request, _reply, done) => {
	const { sort, where, limit } = request.query ?? {};
	if (request.method !== "GET" || sort === undefined) {
		done();
		return;
	}
	const asList = (value) =>
		value === undefined ? undefined : Array.isArray(value) ? value : [value];
	requestSort.run(
		{ sort: asList(sort), where: asList(where), limit: limit === undefined ? undefined : Number(limit) },
		done,
	);
});
const query = storage.query.bind(storage);
storage.query = (projectKey, typeId, params) => {
	const wanted = requestSort.getStore();
	if (
		wanted !== undefined &&
		params.sort === undefined &&
		params.limit === wanted.limit &&
		JSON.stringify(params.where) === JSON.stringify(wanted.where)
	) {
		return query(projectKey, typeId, { ...params, sort: wanted.sort });
	}
	return query(projectKey, typeId, params);
};

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
