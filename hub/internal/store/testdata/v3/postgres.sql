--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: lbfixture; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA lbfixture;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: closes; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.closes (
    store text NOT NULL,
    business_date text NOT NULL,
    state text NOT NULL,
    body jsonb NOT NULL,
    closed_at timestamp with time zone NOT NULL
);


--
-- Name: commands; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.commands (
    id text NOT NULL,
    store text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    result jsonb,
    result_at timestamp with time zone
);


--
-- Name: erp_items; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.erp_items (
    sku text NOT NULL,
    description text NOT NULL,
    price bigint NOT NULL,
    tax_code text NOT NULL,
    status text NOT NULL
);


--
-- Name: erp_onhand; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.erp_onhand (
    store text NOT NULL,
    sku text NOT NULL,
    on_hand text NOT NULL,
    pulled_at timestamp with time zone NOT NULL
);


--
-- Name: exceptions; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.exceptions (
    id bigint NOT NULL,
    store text NOT NULL,
    reason text NOT NULL,
    key text NOT NULL,
    detail text NOT NULL,
    state text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    updated_by text DEFAULT ''::text NOT NULL,
    comment text DEFAULT ''::text NOT NULL
);


--
-- Name: exceptions_id_seq; Type: SEQUENCE; Schema: lbfixture; Owner: -
--

CREATE SEQUENCE lbfixture.exceptions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: exceptions_id_seq; Type: SEQUENCE OWNED BY; Schema: lbfixture; Owner: -
--

ALTER SEQUENCE lbfixture.exceptions_id_seq OWNED BY lbfixture.exceptions.id;


--
-- Name: inventory_items; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.inventory_items (
    store text NOT NULL,
    sku text NOT NULL,
    description text NOT NULL,
    price bigint NOT NULL,
    tax_code text NOT NULL,
    status text NOT NULL,
    on_hand text NOT NULL,
    available text NOT NULL,
    version bigint NOT NULL
);


--
-- Name: inventory_versions; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.inventory_versions (
    store text NOT NULL,
    version bigint NOT NULL,
    epoch text NOT NULL,
    applied_through bigint NOT NULL,
    items integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: postings; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.postings (
    id bigint NOT NULL,
    key text NOT NULL,
    store text NOT NULL,
    terminal text NOT NULL,
    business_date text NOT NULL,
    receipt text NOT NULL,
    kind text NOT NULL,
    epoch text NOT NULL,
    seq bigint NOT NULL,
    content_hash text NOT NULL,
    total bigint NOT NULL,
    state text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_at timestamp with time zone NOT NULL,
    lease_owner text DEFAULT ''::text NOT NULL,
    lease_until timestamp with time zone DEFAULT '1970-01-01 00:00:00+00'::timestamp with time zone NOT NULL,
    ref text DEFAULT ''::text NOT NULL,
    last_error text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    posted_at timestamp with time zone
);


--
-- Name: postings_id_seq; Type: SEQUENCE; Schema: lbfixture; Owner: -
--

CREATE SEQUENCE lbfixture.postings_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: postings_id_seq; Type: SEQUENCE OWNED BY; Schema: lbfixture; Owner: -
--

ALTER SEQUENCE lbfixture.postings_id_seq OWNED BY lbfixture.postings.id;


--
-- Name: records; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.records (
    store text NOT NULL,
    epoch text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    terminal text NOT NULL,
    receipt text NOT NULL,
    business_date text NOT NULL,
    total bigint NOT NULL,
    hash text NOT NULL,
    body jsonb NOT NULL,
    applied_at timestamp with time zone NOT NULL
);


--
-- Name: schema_version; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.schema_version (
    version integer NOT NULL
);


--
-- Name: status; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.status (
    store text NOT NULL,
    body jsonb NOT NULL,
    at timestamp with time zone NOT NULL
);


--
-- Name: stores; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.stores (
    id text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: streams; Type: TABLE; Schema: lbfixture; Owner: -
--

CREATE TABLE lbfixture.streams (
    id bigint NOT NULL,
    store text NOT NULL,
    epoch text NOT NULL,
    applied_through bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: streams_id_seq; Type: SEQUENCE; Schema: lbfixture; Owner: -
--

CREATE SEQUENCE lbfixture.streams_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: streams_id_seq; Type: SEQUENCE OWNED BY; Schema: lbfixture; Owner: -
--

ALTER SEQUENCE lbfixture.streams_id_seq OWNED BY lbfixture.streams.id;


--
-- Name: exceptions id; Type: DEFAULT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.exceptions ALTER COLUMN id SET DEFAULT nextval('lbfixture.exceptions_id_seq'::regclass);


--
-- Name: postings id; Type: DEFAULT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.postings ALTER COLUMN id SET DEFAULT nextval('lbfixture.postings_id_seq'::regclass);


--
-- Name: streams id; Type: DEFAULT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.streams ALTER COLUMN id SET DEFAULT nextval('lbfixture.streams_id_seq'::regclass);


--
-- Data for Name: closes; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.closes VALUES ('s1', '2024-05-01', 'exceptions', '{"state": "exceptions"}', '2026-12-01 09:04:51.495894+00');


--
-- Data for Name: commands; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.commands VALUES ('c2', 's1', '{"v": 1, "id": "c2", "type": "replay", "terminal": "T1", "to_receipt": 9, "from_receipt": 9}', '2026-12-01 09:04:51.495238+00', NULL, NULL);
INSERT INTO lbfixture.commands VALUES ('c1', 's1', '{"v": 1, "id": "c1", "type": "replay", "terminal": "T1", "to_receipt": 3, "from_receipt": 3}', '2026-12-01 09:04:51.49474+00', '{"at": "2026-12-01T09:04:51.495497306Z", "id": "c1", "ok": true, "found": 0, "detail": "none found"}', '2026-12-01 09:04:51.495504+00');


--
-- Data for Name: erp_items; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.erp_items VALUES ('A1', 'Apples', 120, '', '');
INSERT INTO lbfixture.erp_items VALUES ('B2', 'Bread', 250, '', '');


--
-- Data for Name: erp_onhand; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.erp_onhand VALUES ('s1', 'A1', '5', '2026-12-01 09:04:51.496521+00');
INSERT INTO lbfixture.erp_onhand VALUES ('s1', 'B2', '2.5', '2026-12-01 09:04:51.496521+00');


--
-- Data for Name: exceptions; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.exceptions VALUES (1, 's1', 'erp_rejected', 's1|T1|2024-05-01|2|sale', 'posting 2 (s1|T1|2024-05-01|2|sale) rejected by the ERP: unknown sku', 'open', '2026-12-01 09:04:51.492811+00', '2026-12-01 09:04:51.492811+00', '', '');
INSERT INTO lbfixture.exceptions VALUES (2, 's1', 'agent_alarm', 'disk', 'spool 90% full', 'open', '2026-12-01 09:04:51.494325+00', '2026-12-01 09:04:51.494325+00', '', '');


--
-- Data for Name: inventory_items; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.inventory_items VALUES ('s1', 'A1', 'Apples', 120, '', '', '5', '4', 1);
INSERT INTO lbfixture.inventory_items VALUES ('s1', 'B2', 'Bread', 250, '', '', '2.5', '2.5', 1);


--
-- Data for Name: inventory_versions; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.inventory_versions VALUES ('s1', 1, 'e1', 5, 2, '2026-12-01 09:04:51.49935+00');


--
-- Data for Name: postings; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.postings VALUES (4, 's1|T1|2024-05-01|5|return', 's1', 'T1', '2024-05-01', '5', 'return', 'e1', 4, '0c9805efc8c659931be66ba0edd31fd5b2a75686ce84c73feb7d7a99482c7d83', -100, 'pending', 0, '2026-12-01 09:04:51.485986+00', 'o1', '2026-12-01 09:04:51.491285+00', '', '', '2026-12-01 09:04:51.485986+00', '2026-12-01 09:04:51.490285+00', NULL);
INSERT INTO lbfixture.postings VALUES (1, 's1|T1|2024-05-01|1|sale', 's1', 'T1', '2024-05-01', '1', 'sale', 'e1', 1, '52df1365a98bea2ee223a15ecfef76d8b1ff72ba000768f63679074a526045cf', 100, 'done', 1, '2026-12-01 09:04:51.485986+00', '', '1970-01-01 00:00:00+00', 'SO-1', '', '2026-12-01 09:04:51.485986+00', '2026-12-01 09:04:51.492168+00', '2026-12-01 09:04:51.492168+00');
INSERT INTO lbfixture.postings VALUES (2, 's1|T1|2024-05-01|2|sale', 's1', 'T1', '2024-05-01', '2', 'sale', 'e1', 2, '0f2b8924102dce5d3ed236423f03621f80f75d68ee5993acd164f10b0cda9558', 200, 'rejected', 1, '2026-12-01 09:04:51.485986+00', '', '1970-01-01 00:00:00+00', '', 'unknown sku', '2026-12-01 09:04:51.485986+00', '2026-12-01 09:04:51.492811+00', NULL);
INSERT INTO lbfixture.postings VALUES (3, 's1|T1|2024-05-01|4|sale', 's1', 'T1', '2024-05-01', '4', 'sale', 'e1', 3, '17d88106c9ab4918c342a10529cf8ecf5521a01ce32bfdd67a89a3ebe4f91f2f', 400, 'pending', 1, '2100-01-01 00:00:00+00', '', '1970-01-01 00:00:00+00', '', 'timeout', '2026-12-01 09:04:51.485986+00', '2026-12-01 09:04:51.493897+00', NULL);


--
-- Data for Name: records; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.records VALUES ('s1', 'e1', 1, 'sale', 'T1', '1', '2024-05-01', 100, 'f4514c023def1cf5e878d099b37dfc28226db1ef86edc7b9ad030eed5a8166f0', '{"seq": 1, "hash": "f4514c023def1cf5e878d099b37dfc28226db1ef86edc7b9ad030eed5a8166f0", "kind": "sale", "epoch": "e1", "lines": [{"sku": "A1", "amount": 100, "quantity": "1", "unit_price": 100}], "store": "s1", "total": 100, "receipt": "1", "terminal": "T1", "business_date": "2024-05-01"}', '2026-12-01 09:04:51.485986+00');
INSERT INTO lbfixture.records VALUES ('s1', 'e1', 2, 'sale', 'T1', '2', '2024-05-01', 200, '56e550601c2a7b2916cc4719b0d4a5fe2859c4799d2092a4ae72917096f15687', '{"seq": 2, "hash": "56e550601c2a7b2916cc4719b0d4a5fe2859c4799d2092a4ae72917096f15687", "kind": "sale", "epoch": "e1", "lines": [{"sku": "A1", "amount": 200, "quantity": "1", "unit_price": 200}], "store": "s1", "total": 200, "receipt": "2", "terminal": "T1", "business_date": "2024-05-01"}', '2026-12-01 09:04:51.485986+00');
INSERT INTO lbfixture.records VALUES ('s1', 'e1', 3, 'sale', 'T1', '4', '2024-05-01', 400, '94ac88f36fbf449eec35ab7aaba536037ac6158a08e2a7054364425d5dcc3d04', '{"seq": 3, "hash": "94ac88f36fbf449eec35ab7aaba536037ac6158a08e2a7054364425d5dcc3d04", "kind": "sale", "epoch": "e1", "lines": [{"sku": "A1", "amount": 400, "quantity": "1", "unit_price": 400}], "store": "s1", "total": 400, "receipt": "4", "terminal": "T1", "business_date": "2024-05-01"}', '2026-12-01 09:04:51.485986+00');
INSERT INTO lbfixture.records VALUES ('s1', 'e1', 4, 'return', 'T1', '5', '2024-05-01', -100, 'dfadf597804bf58aa6895e39a45e2bb836050bdc758126e7d8ece317477539d1', '{"seq": 4, "hash": "dfadf597804bf58aa6895e39a45e2bb836050bdc758126e7d8ece317477539d1", "kind": "return", "epoch": "e1", "lines": [{"sku": "A1", "amount": -100, "quantity": "1", "unit_price": -100}], "store": "s1", "total": -100, "receipt": "5", "terminal": "T1", "business_date": "2024-05-01"}', '2026-12-01 09:04:51.485986+00');
INSERT INTO lbfixture.records VALUES ('s1', 'e1', 5, 'void', 'T1', '6', '2024-05-01', 0, 'f733fed6055650b7ebd24b1ca006d049f0d0aacf6b790e7ac984b4f8743f75f9', '{"seq": 5, "hash": "f733fed6055650b7ebd24b1ca006d049f0d0aacf6b790e7ac984b4f8743f75f9", "kind": "void", "epoch": "e1", "lines": [{"sku": "A1", "amount": 0, "quantity": "1", "unit_price": 0}], "store": "s1", "total": 0, "receipt": "6", "terminal": "T1", "business_date": "2024-05-01"}', '2026-12-01 09:04:51.485986+00');


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.schema_version VALUES (3);


--
-- Data for Name: status; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.status VALUES ('s1', '{"v": 1, "epoch": "e1", "state": "online", "store": "s1", "backlog": 2, "last_seq": 5, "oldest_unsent_age_seconds": 0}', '2026-12-01 09:04:51.489453+00');


--
-- Data for Name: stores; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.stores VALUES ('s1', 'hash-of-s1', '2026-12-01 09:04:51.484765+00');
INSERT INTO lbfixture.stores VALUES ('s2', 'hash-of-s2', '2026-12-01 09:04:51.485616+00');


--
-- Data for Name: streams; Type: TABLE DATA; Schema: lbfixture; Owner: -
--

INSERT INTO lbfixture.streams VALUES (1, 's1', 'e1', 5, '2026-12-01 09:04:51.485986+00', '2026-12-01 09:04:51.485986+00');


--
-- Name: exceptions_id_seq; Type: SEQUENCE SET; Schema: lbfixture; Owner: -
--

SELECT pg_catalog.setval('lbfixture.exceptions_id_seq', 2, true);


--
-- Name: postings_id_seq; Type: SEQUENCE SET; Schema: lbfixture; Owner: -
--

SELECT pg_catalog.setval('lbfixture.postings_id_seq', 4, true);


--
-- Name: streams_id_seq; Type: SEQUENCE SET; Schema: lbfixture; Owner: -
--

SELECT pg_catalog.setval('lbfixture.streams_id_seq', 1, true);


--
-- Name: closes closes_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.closes
    ADD CONSTRAINT closes_pkey PRIMARY KEY (store, business_date);


--
-- Name: commands commands_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.commands
    ADD CONSTRAINT commands_pkey PRIMARY KEY (id);


--
-- Name: erp_items erp_items_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.erp_items
    ADD CONSTRAINT erp_items_pkey PRIMARY KEY (sku);


--
-- Name: erp_onhand erp_onhand_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.erp_onhand
    ADD CONSTRAINT erp_onhand_pkey PRIMARY KEY (store, sku);


--
-- Name: exceptions exceptions_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.exceptions
    ADD CONSTRAINT exceptions_pkey PRIMARY KEY (id);


--
-- Name: exceptions exceptions_store_reason_key_key; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.exceptions
    ADD CONSTRAINT exceptions_store_reason_key_key UNIQUE (store, reason, key);


--
-- Name: inventory_items inventory_items_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.inventory_items
    ADD CONSTRAINT inventory_items_pkey PRIMARY KEY (store, sku);


--
-- Name: inventory_versions inventory_versions_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.inventory_versions
    ADD CONSTRAINT inventory_versions_pkey PRIMARY KEY (store);


--
-- Name: postings postings_key_key; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.postings
    ADD CONSTRAINT postings_key_key UNIQUE (key);


--
-- Name: postings postings_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.postings
    ADD CONSTRAINT postings_pkey PRIMARY KEY (id);


--
-- Name: records records_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.records
    ADD CONSTRAINT records_pkey PRIMARY KEY (store, epoch, seq);


--
-- Name: status status_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.status
    ADD CONSTRAINT status_pkey PRIMARY KEY (store);


--
-- Name: stores stores_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.stores
    ADD CONSTRAINT stores_pkey PRIMARY KEY (id);


--
-- Name: streams streams_pkey; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.streams
    ADD CONSTRAINT streams_pkey PRIMARY KEY (id);


--
-- Name: streams streams_store_epoch_key; Type: CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.streams
    ADD CONSTRAINT streams_store_epoch_key UNIQUE (store, epoch);


--
-- Name: exceptions_state; Type: INDEX; Schema: lbfixture; Owner: -
--

CREATE INDEX exceptions_state ON lbfixture.exceptions USING btree (state, id);


--
-- Name: postings_day; Type: INDEX; Schema: lbfixture; Owner: -
--

CREATE INDEX postings_day ON lbfixture.postings USING btree (store, business_date);


--
-- Name: postings_due; Type: INDEX; Schema: lbfixture; Owner: -
--

CREATE INDEX postings_due ON lbfixture.postings USING btree (state, next_at);


--
-- Name: postings_open; Type: INDEX; Schema: lbfixture; Owner: -
--

CREATE INDEX postings_open ON lbfixture.postings USING btree (store, state);


--
-- Name: records_day; Type: INDEX; Schema: lbfixture; Owner: -
--

CREATE INDEX records_day ON lbfixture.records USING btree (store, business_date);


--
-- Name: inventory_versions inventory_versions_store_fkey; Type: FK CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.inventory_versions
    ADD CONSTRAINT inventory_versions_store_fkey FOREIGN KEY (store) REFERENCES lbfixture.stores(id);


--
-- Name: status status_store_fkey; Type: FK CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.status
    ADD CONSTRAINT status_store_fkey FOREIGN KEY (store) REFERENCES lbfixture.stores(id);


--
-- Name: streams streams_store_fkey; Type: FK CONSTRAINT; Schema: lbfixture; Owner: -
--

ALTER TABLE ONLY lbfixture.streams
    ADD CONSTRAINT streams_store_fkey FOREIGN KEY (store) REFERENCES lbfixture.stores(id);


--
-- PostgreSQL database dump complete
--


