// server.js — a real Vendure (open-source commerce platform) on SQLite (better-sqlite3) for
// Lanebridge's channel connector tests. Listens on 127.0.0.1 only.
//
// Usage: node server.js DIR PORT   (DIR holds vendure.sqlite and the superadmin password file)
// The Admin API is http://127.0.0.1:PORT/admin-api; authentication by login or bearer token.
'use strict';
const path = require('path');
const fs = require('fs');
const { bootstrap, dummyPaymentHandler } = require('@vendure/core');

const dir = process.argv[2];
const port = Number(process.argv[3] || 18100);
if (!dir || !port) {
  console.error('usage: node server.js DIR PORT');
  process.exit(2);
}
const password = fs.readFileSync(path.join(dir, 'superadmin.password'), 'utf8').trim();

const config = {
  apiOptions: { hostname: '127.0.0.1', port, adminApiPath: 'admin-api', shopApiPath: 'shop-api' },
  authOptions: {
    tokenMethod: ['bearer', 'cookie'],
    superadminCredentials: { identifier: 'superadmin', password },
    cookieOptions: { secret: password },
  },
  dbConnectionOptions: {
    type: 'better-sqlite3',
    database: path.join(dir, 'vendure.sqlite'),
    synchronize: true,
    logging: false,
  },
  paymentOptions: { paymentMethodHandlers: [dummyPaymentHandler] },
  // No search plugin: the tests use the Admin API only, and indexing every stock change would
  // compete for the shared CPU.
  plugins: [],
};

bootstrap(config).then(
  () => console.log(`vendure: listening on 127.0.0.1:${port}`),
  (err) => {
    console.error('vendure: failed to start:', err);
    process.exit(1);
  },
);
