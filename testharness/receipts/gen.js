// gen.js writes golden ESC/POS fixtures made by encoders other than Lanebridge's own
// (receiptline, Apache-2.0; node-thermal-printer, MIT), with what each receipt holds
// (truth.json, money in integer minor units) so the Go tests can check the parser's records
// against the generator rather than against themselves.
//
//   cd testharness/receipts && npm ci && node gen.js
//
// Outputs: agent/internal/profile/testdata/encoders/<layout>/{input.bin,truth.json}. Card
// numbers are printed masked (as the receipts of a PCI-compliant POS are): no PAN is written.
'use strict';
const fs = require('fs');
const path = require('path');
const receiptline = require('receiptline');
const { ThermalPrinter, PrinterTypes, CharacterSet } = require('node-thermal-printer');

const out = path.join(__dirname, '..', '..', 'agent', 'internal', 'profile', 'testdata', 'encoders');

// ---- money: integers of minor units only ----
function group(intStr, sep) {
  return intStr.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
}
// fmt(v, minor, dec, thou): 123456 → "1.234,56" (minor 2, ",", ".").
function fmt(v, minor, dec, thou) {
  const neg = v < 0;
  const s = String(Math.abs(v)).padStart(minor + 1, '0');
  const i = s.slice(0, s.length - minor), f = s.slice(s.length - minor);
  return (neg ? '-' : '') + group(i, thou) + (minor ? dec + f : '');
}
// taxIncluded returns the tax contained in a gross amount at rate percent (half away from zero).
function taxIncluded(gross, rate) {
  const n = Math.abs(gross) * rate, d = 100 + rate;
  const t = Math.floor((2 * n + d) / (2 * d));
  return gross < 0 ? -t : t;
}
// weigh returns grams × unit price per kg, rounded half up: the amount of a weighed item.
function weigh(grams, perKg) {
  return Math.floor((grams * perKg * 2 + 1000) / 2000);
}
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function write(layout, bytes, truth) {
  const dir = path.join(out, layout);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'input.bin'), bytes);
  fs.writeFileSync(path.join(dir, 'truth.json'), JSON.stringify(truth, null, 2) + '\n');
  console.log(`${layout}: ${bytes.length} bytes, ${truth.length} transactions`);
}

// escape receiptline's special characters in text.
const rl = (s) => String(s).replace(/[\\|{}~_"`^]/g, (c) => '\\' + c).replace(/^-/, '\\-').replace(/^=/, '\\=');

// ================= receiptline, German, EUR, tax included =================
function germanEUR() {
  const cfg = { cpl: 42, encoding: 'cp858', command: 'escpos', cutting: true };
  const m = (v) => fmt(v, 2, ',', '.');
  const txs = [];
  const docs = [];
  const head = (no, date, time, title) =>
    `{width:*}\n^BÄCKEREI & MARKT MÜLLER\nHauptstraße 1, 10115 Berlin\n` +
    (title ? `^${rl(title)}\n` : '') +
    `{width:*,18}\n|Bon ${no} Kasse K1 | ${date} ${time}|\n---\n{width:*,8,1}\n`;
  const item = (d, v, code) => `|${rl(d)} | ${m(v)} | ${code}|\n`;

  // Sale: a description wider than its cell (cut inside a word), a weighed item, an amount
  // wider than its column, a card tender with a masked number.
  {
    const apples = weigh(456, 299);
    const lines = [
      { description: 'Bio-Vollkornbrot mit Sonnenblumenkernen', quantity: '1', amount: 349 },
      { description: 'Äpfel Elstar lose', quantity: '0.456', unit_price: 299, amount: apples },
      { description: 'Siebträgermaschine Dual', quantity: '1', amount: 1249900 },
      { description: 'Vollmilch 3,5% 1l', quantity: '1', amount: 119 },
    ];
    const total = sum(lines.map((l) => l.amount));
    const tax = taxIncluded(total, 19);
    let d = head(1001, '14.03.2024', '08:15');
    d += item(lines[0].description, lines[0].amount, 'A');
    d += item(lines[1].description, lines[1].amount, 'A');
    d += `{width:*}\n|~~0,456 kg x 2,99 EUR/kg\n{width:*,8,1}\n`;
    d += item(lines[2].description, lines[2].amount, 'A');
    d += item(lines[3].description, lines[3].amount, 'A');
    d += `{width:*,12}\n---\n^SUMME EUR | ^${m(total)}\n`;
    d += `VISA ************4242 | ${m(total)}\n`;
    d += `{width:*,12}\nUSt A 19% netto | ${m(total - tax)}\nUSt A 19% | ${m(tax)}\n`;
    d += `{width:*}\nVielen Dank für Ihren Einkauf!\n=\n`;
    docs.push(d);
    txs.push({ kind: 'sale', receipt: '1001', business_date: '2024-03-14', lines, total,
      taxes: [{ code: 'A', rate: '19', taxable: total - tax, amount: tax }],
      tenders: [{ type: 'card', amount: total, last4: '4242' }] });
  }
  // Return of the bread, cash refund.
  {
    const lines = [{ description: 'Bio-Vollkornbrot mit Sonnenblumenkernen', quantity: '1', amount: -349 }];
    const total = -349, tax = taxIncluded(total, 19);
    let d = head(1002, '14.03.2024', '09:02', 'RÜCKGABE');
    d += item(lines[0].description, -349, 'A');
    d += `{width:*,12}\n---\nZu Bon | 1001\n^SUMME EUR | ^${m(total)}\nBar | ${m(total)}\n`;
    d += `{width:*,12}\nUSt A 19% netto | ${m(total - tax)}\nUSt A 19% | ${m(tax)}\n=\n`;
    docs.push(d);
    txs.push({ kind: 'return', receipt: '1002', business_date: '2024-03-14', original_receipt: '1001', lines, total,
      taxes: [{ code: 'A', rate: '19', taxable: total - tax, amount: tax }], tenders: [{ type: 'cash', amount: total }] });
  }
  // Void: the receipt is cancelled before payment (no total line).
  {
    const lines = [
      { description: 'Brezel', quantity: '1', amount: 85 },
      { description: 'Kaffee to go groß', quantity: '1', amount: 320 },
    ];
    let d = head(1003, '14.03.2024', '09:40', 'STORNO');
    for (const l of lines) d += item(l.description, l.amount, 'A');
    d += `{width:*}\n---\n*** BON ABGEBROCHEN ***\n=\n`;
    docs.push(d);
    txs.push({ kind: 'void', receipt: '1003', business_date: '2024-03-14', lines, total: 405 });
  }
  // No sale: the drawer opened without a sale, noted by the manager.
  {
    let d = head(1004, '14.03.2024', '10:05');
    d += `{width:*}\nSCHUBLADE GEÖFFNET\n|Filialleiter 2\n=\n`;
    docs.push(d);
    txs.push({ kind: 'no_sale', receipt: '1004', business_date: '2024-03-14', total: 0 });
  }
  // Z report of the day.
  {
    const gross = 1349813, refunds = 349, voids = 405, net = gross - refunds;
    const card = 1049813 - 349, cash = net - card;
    let d = `{width:*}\n^BÄCKEREI & MARKT MÜLLER\n^Z-BON 0042\n{width:*,18}\n|Kasse K1 | 14.03.2024 22:00|\n---\n{width:*,4,12}\n`;
    d += `Umsatz brutto | 131 | ${m(gross)}\nRückgaben | 1 | ${m(refunds)}\nStornos | 1 | ${m(voids)}\n`;
    d += `Schublade ohne Verkauf | 1 | \nUmsatz netto | | ${m(net)}\n---\nBar | | ${m(cash)}\nKarte | | ${m(card)}\n`;
    d += `USt A 19% | | ${m(taxIncluded(net, 19))}\n=\n`;
    docs.push(d);
    txs.push({ kind: 'z_report', receipt: '0042', business_date: '2024-03-14', total: net,
      z: { counter: 42, gross, net, refunds: { count: 1, amount: refunds }, voids: { count: 1, amount: voids }, no_sale_count: 1,
        tenders: [{ type: 'cash', amount: cash }, { type: 'card', amount: card }], taxes: [{ code: 'A', amount: taxIncluded(net, 19) }] } });
  }
  const bytes = Buffer.concat(docs.map((d) => Buffer.from(receiptline.transform(d, cfg), 'binary')));
  write('receiptline-de-eur', bytes, txs);
}

// ================= receiptline, Japanese (Shift_JIS), JPY, tax included =================
function japaneseJPY() {
  const cfg = { cpl: 42, encoding: 'shiftjis', command: 'escpos', cutting: true };
  const y = (v) => '¥' + fmt(v, 0, '.', ',');
  const txs = [];
  const docs = [];
  const head = (no, title) =>
    `{width:*}\n^^ローソン 渋谷店\n` + (title ? `^${title}\n` : '') +
    `{width:*,14}\n|2024年03月14日 12:30 | レジ01 No.${no}|\n---\n{width:*,10}\n`;
  const item = (d, v) => `|${rl(d)} | ${y(v)}|\n`;
  {
    const lines = [
      { description: 'おにぎり 紀州南高梅', quantity: '1', amount: 150 },
      { description: '北海道産 牛乳 1000ml', quantity: '1', amount: 248 },
      { description: 'ミネラルウォーター 富士山のバナジウム天然水 2L', quantity: '1', amount: 138 },
      { description: 'ワイヤレスイヤホン', quantity: '1', amount: 12800 },
    ];
    const total = sum(lines.map((l) => l.amount));
    const tax = taxIncluded(total, 10);
    let d = head('2001');
    for (const l of lines) d += item(l.description, l.amount);
    d += `---\n^合計 | ^${y(total)}\n(内消費税等 10% | ${y(tax)})\nお預り | ${y(20000)}\nお釣り | ${y(20000 - total)}\n=\n`;
    docs.push(d);
    txs.push({ kind: 'sale', receipt: '2001', business_date: '2024-03-14', lines, total,
      taxes: [{ code: '10', rate: '10', amount: tax }], tenders: [{ type: 'cash', amount: 20000 }], change: 20000 - total });
  }
  {
    const lines = [{ description: '北海道産 牛乳 1000ml', quantity: '1', amount: -248 }];
    const total = -248, tax = taxIncluded(total, 10);
    let d = head('2002', '返品');
    d += item(lines[0].description, -248);
    d += `---\n元取引 | No.2001\n^合計 | ^${y(total)}\n(内消費税等 10% | ${y(tax)})\n現金 | ${y(total)}\n=\n`;
    docs.push(d);
    txs.push({ kind: 'return', receipt: '2002', business_date: '2024-03-14', original_receipt: '2001', lines, total,
      taxes: [{ code: '10', rate: '10', amount: tax }], tenders: [{ type: 'cash', amount: total }] });
  }
  {
    const lines = [{ description: 'からあげクン レギュラー', quantity: '1', amount: 238 }];
    let d = head('2003', '取消');
    d += item(lines[0].description, 238);
    d += `{width:*}\n---\n*** 取引中止 ***\n=\n`;
    docs.push(d);
    txs.push({ kind: 'void', receipt: '2003', business_date: '2024-03-14', lines, total: 238 });
  }
  {
    let d = head('2004');
    d += `{width:*}\nドロアオープン (両替)\n=\n`;
    docs.push(d);
    txs.push({ kind: 'no_sale', receipt: '2004', business_date: '2024-03-14', total: 0 });
  }
  {
    const gross = 583420, refunds = 248, voids = 238, net = gross - refunds, card = 301200, cash = net - card;
    let d = `{width:*}\n^^ローソン 渋谷店\n^精算レポート Z0015\n{width:*,14}\n|2024年03月14日 23:59 | レジ01|\n---\n{width:*,4,12}\n`;
    d += `総売上 | 412 | ${y(gross)}\n返品 | 1 | ${y(refunds)}\n取消 | 1 | ${y(voids)}\nドロアオープン | 1 | \n純売上 | | ${y(net)}\n---\n`;
    d += `現金 | | ${y(cash)}\nクレジット | | ${y(card)}\n内消費税等 10% | | ${y(taxIncluded(net, 10))}\n=\n`;
    docs.push(d);
    txs.push({ kind: 'z_report', receipt: '0015', business_date: '2024-03-14', total: net,
      z: { counter: 15, gross, net, refunds: { count: 1, amount: refunds }, voids: { count: 1, amount: voids }, no_sale_count: 1,
        tenders: [{ type: 'cash', amount: cash }, { type: 'card', amount: card }], taxes: [{ code: '10', amount: taxIncluded(net, 10) }] } });
  }
  const bytes = Buffer.concat(docs.map((d) => Buffer.from(receiptline.transform(d, cfg), 'binary')));
  write('receiptline-ja-jpy', bytes, txs);
}

// ================= node-thermal-printer, Korean (EUC-KR), KRW, tax included =================
function koreanKRW() {
  const w = (v) => fmt(v, 0, '.', ',');
  const txs = [];
  const chunks = [];
  const printer = () => new ThermalPrinter({ type: PrinterTypes.EPSON, width: 42, characterSet: CharacterSet.KOREA, interface: 'tcp://127.0.0.1:9' });
  const head = (p, no, title) => {
    p.initHardware();
    p.alignCenter();
    p.println('GS25 강남역점');
    if (title) p.println(title);
    p.alignLeft();
    p.leftRight('2024-03-14 18:20', `POS 02 영수증 ${no}`);
    p.drawLine();
  };
  const item = (p, d, v) => p.tableCustom([{ text: d, cols: 28, align: 'LEFT' }, { text: w(v), cols: 14, align: 'RIGHT' }]);
  const done = (p) => { p.cut(); chunks.push(p.getBuffer()); };
  {
    const lines = [
      { description: '신라면 멀티팩 5개입 (120g x 5) 농심 오리지널 매운맛', quantity: '1', amount: 4980 },
      { description: '바나나맛우유 240ml', quantity: '1', amount: 1700 },
      { description: '삼각김밥 참치마요', quantity: '1', amount: 1300 },
    ];
    const total = sum(lines.map((l) => l.amount)), vat = taxIncluded(total, 10);
    const p = printer();
    head(p, '3001');
    for (const l of lines) item(p, l.description, l.amount);
    p.drawLine();
    p.leftRight('합계', w(total));
    p.leftRight('과세물품가액', w(total - vat));
    p.leftRight('부가세', w(vat));
    p.leftRight('신용카드 ****-****-****-5100', w(total));
    done(p);
    txs.push({ kind: 'sale', receipt: '3001', business_date: '2024-03-14', lines, total,
      taxes: [{ code: 'VAT', taxable: total - vat, amount: vat }], tenders: [{ type: 'card', amount: total, last4: '5100' }] });
  }
  {
    const lines = [{ description: '바나나맛우유 240ml', quantity: '1', amount: -1700 }];
    const total = -1700, vat = taxIncluded(total, 10);
    const p = printer();
    head(p, '3002', '반품');
    item(p, lines[0].description, -1700);
    p.drawLine();
    p.leftRight('원거래', '3001');
    p.leftRight('합계', w(total));
    p.leftRight('과세물품가액', w(total - vat));
    p.leftRight('부가세', w(vat));
    p.leftRight('현금', w(total));
    done(p);
    txs.push({ kind: 'return', receipt: '3002', business_date: '2024-03-14', original_receipt: '3001', lines, total,
      taxes: [{ code: 'VAT', taxable: total - vat, amount: vat }], tenders: [{ type: 'cash', amount: total }] });
  }
  {
    const lines = [{ description: '컵라면 육개장 사발면', quantity: '1', amount: 1100 }];
    const p = printer();
    head(p, '3003', '거래취소');
    item(p, lines[0].description, 1100);
    p.drawLine();
    p.println('*** 전체 취소 ***');
    done(p);
    txs.push({ kind: 'void', receipt: '3003', business_date: '2024-03-14', lines, total: 1100 });
  }
  {
    const p = printer();
    head(p, '3004');
    p.println('돈통 열림 (NO SALE)');
    p.openCashDrawer();
    done(p);
    txs.push({ kind: 'no_sale', receipt: '3004', business_date: '2024-03-14', total: 0 });
  }
  {
    const gross = 2458300, refunds = 1700, voids = 1100, net = gross - refunds, card = 1987000, cash = net - card;
    const p = printer();
    p.initHardware();
    p.alignCenter();
    p.println('GS25 강남역점');
    p.println('일일 마감 (Z) 0021');
    p.alignLeft();
    p.leftRight('2024-03-14 23:50', 'POS 02');
    p.drawLine();
    p.leftRight('총매출 218건', w(gross));
    p.leftRight('반품 1건', w(refunds));
    p.leftRight('취소 1건', w(voids));
    p.leftRight('돈통 열림 1회', '');
    p.leftRight('순매출', w(net));
    p.leftRight('현금', w(cash));
    p.leftRight('신용카드', w(card));
    done(p);
    txs.push({ kind: 'z_report', receipt: '0021', business_date: '2024-03-14', total: net,
      z: { counter: 21, gross, net, refunds: { count: 1, amount: refunds }, voids: { count: 1, amount: voids }, no_sale_count: 1,
        tenders: [{ type: 'cash', amount: cash }, { type: 'card', amount: card }] } });
  }
  write('ntp-ko-krw', Buffer.concat(chunks), txs);
}

germanEUR();
japaneseJPY();
koreanKRW();
