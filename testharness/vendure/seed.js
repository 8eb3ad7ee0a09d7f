// seed.js — seed a fresh Vendure through its Admin API: a default tax category, a second stock
// location "Web warehouse", and products with variants whose SKUs the connector tests use.
// Usage: node seed.js URL PASSWORD_FILE SKU[,SKU...]   prints KEY=VALUE lines for the env file.
'use strict';
const fs = require('fs');
const [url, passFile, skuList] = process.argv.slice(2);
const password = fs.readFileSync(passFile, 'utf8').trim();
let token = '';

async function gql(query, variables) {
  const res = await fetch(url.replace(/\/+$/, '') + '/admin-api', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const t = res.headers.get('vendure-auth-token');
  if (t) token = t;
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

(async () => {
  const login = await gql(`mutation($p:String!){ login(username:"superadmin", password:$p){ __typename ... on ErrorResult { message } } }`, { p: password });
  if (login.login.__typename !== 'CurrentUser') throw new Error('login: ' + JSON.stringify(login));
  const country = await gql(`mutation{ createCountry(input:{code:"DE", enabled:true, translations:[{languageCode:en, name:"Germany"}]}){ id } }`);
  const zone = await gql(`mutation($c:ID!){ createZone(input:{name:"Europe", memberIds:[$c]}){ id } }`, { c: country.createCountry.id });
  const ch = await gql(`query{ activeChannel{ id } }`);
  await gql(`mutation($id:ID!,$z:ID!){ updateChannel(input:{id:$id, defaultTaxZoneId:$z, defaultShippingZoneId:$z}){ __typename } }`,
    { id: ch.activeChannel.id, z: zone.createZone.id });
  const cat = await gql(`mutation{ createTaxCategory(input:{name:"Standard", isDefault:true}){ id } }`);
  await gql(`mutation($c:ID!,$z:ID!){ createTaxRate(input:{name:"Standard DE", enabled:true, value:19, categoryId:$c, zoneId:$z}){ id } }`,
    { c: cat.createTaxCategory.id, z: zone.createZone.id });
  const locs = await gql(`query{ stockLocations{ items{ id name } } }`);
  const loc = await gql(`mutation{ createStockLocation(input:{name:"Web warehouse", description:"Lanebridge test"}){ id } }`);
  const skus = skuList.split(',').filter(Boolean);
  for (const sku of skus) {
    const p = await gql(`mutation($n:String!,$s:String!){ createProduct(input:{translations:[{languageCode:en, name:$n, slug:$s, description:""}]}){ id } }`,
      { n: 'Product ' + sku, s: 'product-' + sku.toLowerCase() });
    await gql(`mutation($pid:ID!,$sku:String!,$n:String!){ createProductVariants(input:[{productId:$pid, sku:$sku, price:1000,
      translations:[{languageCode:en, name:$n}], stockOnHand:5, trackInventory:TRUE}]){ id sku } }`,
      { pid: p.createProduct.id, sku, n: 'Variant ' + sku });
  }
  console.log('LANEBRIDGE_VENDURE_SKUS=' + skus.join(','));
  console.log('LANEBRIDGE_VENDURE_DEFAULT_LOCATION=' + locs.stockLocations.items[0].id);
  console.log('LANEBRIDGE_VENDURE_WEB_LOCATION=' + loc.createStockLocation.id);
})().catch((err) => {
  console.error('vendure-seed:', err.message);
  process.exit(1);
});
