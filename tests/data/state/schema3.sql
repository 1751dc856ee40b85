-- written by faice at 40b7a66 (schema 3)
PRAGMA user_version=3;
BEGIN TRANSACTION;
CREATE TABLE batch_counts (experiment_id TEXT NOT NULL, username TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL,
                                       n INTEGER NOT NULL, PRIMARY KEY (experiment_id, username, node, state)) WITHOUT ROWID;
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','','registered',0);
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','n1','cancelled',1);
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','n1','failed',1);
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','n1','processing',0);
INSERT INTO "batch_counts" VALUES('6b10416f9ee08a6490c8fffe','ann','n1','succeeded',1);
INSERT INTO "batch_counts" VALUES('6b10416ffd40a029e715e9b1','alice','','registered',1);
INSERT INTO "batch_counts" VALUES('6b10416ffd40a029e715e9b1','alice','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b10416ffd40a029e715e9b1','alice','n2','processing',1);
CREATE TABLE "batches" (
   "id" TEXT PRIMARY KEY,
   "experiment_id" TEXT REFERENCES "experiments"("id"),
   "idx" INTEGER,
   "state" TEXT,
   "attempts" INTEGER,
   "created_at" REAL,
   "updated_at" REAL,
   "node" TEXT,
   "argv" TEXT,
   "exit_code" INTEGER,
   "error" TEXT,
   "outputs" TEXT,
   "container" TEXT,
   "username" TEXT
, "history_json" TEXT);
INSERT INTO "batches" VALUES('6b10416f65307d9d5b8dd349','6b10416f9ee08a6490c8fffe',0,'succeeded',0,1.79622743940747094156e+09,1.79622743940870666502e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann','[{"state":"registered","time":1796227439.407471,"node":null},{"state":"scheduled","time":1796227439.4080794,"node":null},{"state":"processing","time":1796227439.4082868,"node":"n1"},{"state":"succeeded","time":1796227439.4087067,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b10416f5d3f328ec7a44cbb','6b10416f9ee08a6490c8fffe',1,'failed',2,1.79622743940747094156e+09,1.79622743940882492069e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann','[{"state":"registered","time":1796227439.407471,"node":null},{"state":"scheduled","time":1796227439.4084299,"node":null},{"state":"processing","time":1796227439.4085023,"node":"n1"},{"state":"failed","time":1796227439.408825,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b10416f84d061e0b396b330','6b10416f9ee08a6490c8fffe',2,'cancelled',0,1.79622743940747094156e+09,1.79622743940893363949e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann','[{"state":"registered","time":1796227439.407471,"node":null},{"state":"scheduled","time":1796227439.4085748,"node":null},{"state":"processing","time":1796227439.4086406,"node":"n1"},{"state":"cancelled","time":1796227439.4089336,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b10416f67f0c30173c1a975','6b10416ffd40a029e715e9b1',0,'registered',0,1.79622743940788602828e+09,1.79622743940788602828e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice','[{"state": "registered", "time": 1796227439.407886, "node": null}]');
INSERT INTO "batches" VALUES('6b10416f1bc67cd3d2bf4963','6b10416ffd40a029e715e9b1',1,'processing',0,1.79622743940788602828e+09,1.79622743940908980364e+09,'n2','["true"]',NULL,NULL,'{}',NULL,'alice','[{"state":"registered","time":1796227439.407886,"node":null},{"state":"scheduled","time":1796227439.4090233,"node":null},{"state":"processing","time":1796227439.4090898,"node":"n2"}]');
CREATE TABLE "experiments" (
   "id" TEXT PRIMARY KEY,
   "created_at" REAL,
   "username" TEXT,
   "source" TEXT,
   "red" TEXT,
   "batch_count" INTEGER,
   "image" TEXT,
   "engine" TEXT,
   "pid" INTEGER,
   "host" TEXT
, "runner" TEXT, "ram" INTEGER, "retries" INTEGER, "settings" TEXT, "has_secrets" INTEGER);
INSERT INTO "experiments" VALUES('6b10416f9ee08a6490c8fffe',1.79622743940747094156e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23247,'vm','exec',NULL,0,'{}',0);
INSERT INTO "experiments" VALUES('6b10416ffd40a029e715e9b1',1.79622743940788602828e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23247,'vm','serve',256,1,'{"gpus": 0}',0);
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
, "node" TEXT);
INSERT INTO "history" VALUES(1,'6b10416f65307d9d5b8dd349','6b10416f9ee08a6490c8fffe',1.79622743940747094156e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(2,'6b10416f5d3f328ec7a44cbb','6b10416f9ee08a6490c8fffe',1.79622743940747094156e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(3,'6b10416f84d061e0b396b330','6b10416f9ee08a6490c8fffe',1.79622743940747094156e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(4,'6b10416f67f0c30173c1a975','6b10416ffd40a029e715e9b1',1.79622743940788602828e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(5,'6b10416f1bc67cd3d2bf4963','6b10416ffd40a029e715e9b1',1.79622743940788602828e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(6,'6b10416f65307d9d5b8dd349','6b10416f9ee08a6490c8fffe',1.79622743940807938576e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(7,'6b10416f65307d9d5b8dd349','6b10416f9ee08a6490c8fffe',1.7962274394082868099e+09,'processing','test','n1');
INSERT INTO "history" VALUES(8,'6b10416f5d3f328ec7a44cbb','6b10416f9ee08a6490c8fffe',1.79622743940842986105e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(9,'6b10416f5d3f328ec7a44cbb','6b10416f9ee08a6490c8fffe',1.79622743940850234031e+09,'processing','test','n1');
INSERT INTO "history" VALUES(10,'6b10416f84d061e0b396b330','6b10416f9ee08a6490c8fffe',1.79622743940857481953e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(11,'6b10416f84d061e0b396b330','6b10416f9ee08a6490c8fffe',1.7962274394086406231e+09,'processing','test','n1');
INSERT INTO "history" VALUES(12,'6b10416f65307d9d5b8dd349','6b10416f9ee08a6490c8fffe',1.79622743940870666502e+09,'succeeded','exit code 0','n1');
INSERT INTO "history" VALUES(13,'6b10416f5d3f328ec7a44cbb','6b10416f9ee08a6490c8fffe',1.79622743940882492069e+09,'failed','exit code 2','n1');
INSERT INTO "history" VALUES(14,'6b10416f84d061e0b396b330','6b10416f9ee08a6490c8fffe',1.79622743940893363949e+09,'cancelled','cancelled by the test','n1');
INSERT INTO "history" VALUES(15,'6b10416f1bc67cd3d2bf4963','6b10416ffd40a029e715e9b1',1.79622743940902328489e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(16,'6b10416f1bc67cd3d2bf4963','6b10416ffd40a029e715e9b1',1.79622743940908980364e+09,'processing','test','n2');
CREATE TABLE "login_failures" (
   "id" INTEGER PRIMARY KEY,
   "username" TEXT,
   "client" TEXT,
   "time" REAL
);
CREATE TABLE "tokens" (
   "hash" TEXT PRIMARY KEY,
   "username" TEXT,
   "expires_at" REAL,
   "created_at" REAL
, "kind" TEXT);
INSERT INTO "tokens" VALUES('607dbca76a5dfa82ba8e11c518a370514a373db774a8cfa1dd3473af5a1ab53f','alice',4.94982743959244155885e+09,1.79622743959244132042e+09,'access');
INSERT INTO "tokens" VALUES('2512a866d6e5893d7478aac748515f1b255b2f9691a68ab8f9b1b859d4717561','bob',4.94982743959261322014e+09,1.79622743959261322024e+09,'access');
CREATE TABLE "users" (
   "name" TEXT PRIMARY KEY,
   "hash" BLOB,
   "salt" BLOB,
   "is_admin" INTEGER,
   "created_at" REAL
);
INSERT INTO "users" VALUES('alice',X'A95C7BF7A1D313D7B0A1A68B28F1E2AC65D5674FAA4B587645E6DE44CC532B32',X'1FC3BD4181EC0A49FCB36500EAAAF62B',1,1796227439.41617);
INSERT INTO "users" VALUES('bob',X'43EBECDA3CB2D8CF61D91212F2A5C3142F2F7798C623E053DD1875975CEAB987',X'C3CB2C735806E0BB366133E435541103',0,1.7962274394967622757e+09);
CREATE INDEX "idx_tokens_username"
    ON "tokens" ("username");
CREATE INDEX "idx_login_failures_username_client_time"
    ON "login_failures" ("username", "client", "time");
CREATE INDEX "idx_experiments_created_at"
    ON "experiments" ("created_at");
CREATE INDEX "idx_experiments_username_created_at"
    ON "experiments" ("username", "created_at");
CREATE UNIQUE INDEX "idx_batches_experiment_id_idx"
    ON "batches" ("experiment_id", "idx");
CREATE INDEX "idx_batches_experiment_id_created_at"
    ON "batches" ("experiment_id", "created_at");
CREATE INDEX "idx_batches_experiment_id_state"
    ON "batches" ("experiment_id", "state");
CREATE INDEX "idx_batches_state_created_at"
    ON "batches" ("state", "created_at");
CREATE INDEX "idx_batches_username_created_at"
    ON "batches" ("username", "created_at");
CREATE INDEX "idx_batches_username_state_created_at"
    ON "batches" ("username", "state", "created_at");
CREATE INDEX "idx_batches_node_created_at"
    ON "batches" ("node", "created_at");
CREATE INDEX "idx_batches_created_at"
    ON "batches" ("created_at");
CREATE INDEX "idx_history_batch_id_time"
    ON "history" ("batch_id", "time");
CREATE INDEX batch_counts_state ON batch_counts (state);
CREATE TRIGGER batch_counts_insert AFTER INSERT ON batches BEGIN
                INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
                    ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
            END;
CREATE TRIGGER batch_counts_update AFTER UPDATE OF state, node, username, experiment_id ON batches
                WHEN OLD.state IS NOT NEW.state OR OLD.node IS NOT NEW.node OR OLD.username IS NOT NEW.username OR OLD.experiment_id IS NOT NEW.experiment_id
            BEGIN
                UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
                    AND node = COALESCE(OLD.node, '') AND state = OLD.state;
                INSERT INTO batch_counts VALUES (NEW.experiment_id, COALESCE(NEW.username, ''), COALESCE(NEW.node, ''), NEW.state, 1)
                    ON CONFLICT (experiment_id, username, node, state) DO UPDATE SET n = n + 1;
            END;
CREATE TRIGGER batch_counts_delete AFTER DELETE ON batches BEGIN
                UPDATE batch_counts SET n = n - 1 WHERE experiment_id = OLD.experiment_id AND username = COALESCE(OLD.username, '')
                    AND node = COALESCE(OLD.node, '') AND state = OLD.state;
            END;
COMMIT;
