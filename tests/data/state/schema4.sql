-- written by faice at 7cfc512 (schema 4)
PRAGMA user_version=4;
BEGIN TRANSACTION;
CREATE TABLE batch_counts (experiment_id TEXT NOT NULL, username TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL,
                                       n INTEGER NOT NULL, PRIMARY KEY (experiment_id, username, node, state)) WITHOUT ROWID;
INSERT INTO "batch_counts" VALUES('6b104170aa10552bba14c6db','alice','','registered',1);
INSERT INTO "batch_counts" VALUES('6b104170aa10552bba14c6db','alice','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b104170aa10552bba14c6db','alice','n2','processing',1);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','','registered',0);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','n1','cancelled',1);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','n1','failed',1);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','n1','processing',0);
INSERT INTO "batch_counts" VALUES('6b104170fceb52a891864a56','ann','n1','succeeded',1);
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
INSERT INTO "batches" VALUES('6b104170374a60a59b1ea1f3','6b104170fceb52a891864a56',0,'succeeded',0,1.79622744037891554831e+09,1.7962274403940241337e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann','[{"state":"registered","time":1796227440.3789155,"node":null},{"state":"scheduled","time":1796227440.3884768,"node":null},{"state":"processing","time":1796227440.3887198,"node":"n1"},{"state":"succeeded","time":1796227440.3940241,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b10417035cb390a18010f39','6b104170fceb52a891864a56',1,'failed',2,1.79622744037891554831e+09,1.79622744039428877834e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann','[{"state":"registered","time":1796227440.3789155,"node":null},{"state":"scheduled","time":1796227440.3889105,"node":null},{"state":"processing","time":1796227440.389017,"node":"n1"},{"state":"failed","time":1796227440.3942888,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b104170c235708dddf16bad','6b104170fceb52a891864a56',2,'cancelled',0,1.79622744037891554831e+09,1.79622744039441585538e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann','[{"state":"registered","time":1796227440.3789155,"node":null},{"state":"scheduled","time":1796227440.3891113,"node":null},{"state":"processing","time":1796227440.3891795,"node":"n1"},{"state":"cancelled","time":1796227440.3944159,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b1041700925f198446b4fac','6b104170aa10552bba14c6db',0,'registered',0,1.79622744038822245598e+09,1.79622744038822245598e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice','[{"state": "registered", "time": 1796227440.3882225, "node": null}]');
INSERT INTO "batches" VALUES('6b10417023db1e44324ddb96','6b104170aa10552bba14c6db',1,'processing',0,1.79622744038822245598e+09,1.79622744039461350439e+09,'n2','["true"]',NULL,NULL,'{}',NULL,'alice','[{"state":"registered","time":1796227440.3882225,"node":null},{"state":"scheduled","time":1796227440.3945177,"node":null},{"state":"processing","time":1796227440.3946135,"node":"n2"}]');
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
INSERT INTO "experiments" VALUES('6b104170fceb52a891864a56',1.79622744037891554831e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23251,'vm','exec',NULL,0,'{}',0);
INSERT INTO "experiments" VALUES('6b104170aa10552bba14c6db',1.79622744038822245598e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23251,'vm','serve',256,1,'{"gpus": 0}',0);
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
, "node" TEXT);
INSERT INTO "history" VALUES(1,'6b104170374a60a59b1ea1f3','6b104170fceb52a891864a56',1.79622744037891554831e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(2,'6b10417035cb390a18010f39','6b104170fceb52a891864a56',1.79622744037891554831e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(3,'6b104170c235708dddf16bad','6b104170fceb52a891864a56',1.79622744037891554831e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(4,'6b1041700925f198446b4fac','6b104170aa10552bba14c6db',1.79622744038822245598e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(5,'6b10417023db1e44324ddb96','6b104170aa10552bba14c6db',1.79622744038822245598e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(6,'6b104170374a60a59b1ea1f3','6b104170fceb52a891864a56',1.79622744038847684863e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(7,'6b104170374a60a59b1ea1f3','6b104170fceb52a891864a56',1.79622744038871979708e+09,'processing','test','n1');
INSERT INTO "history" VALUES(8,'6b10417035cb390a18010f39','6b104170fceb52a891864a56',1.79622744038891053201e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(9,'6b10417035cb390a18010f39','6b104170fceb52a891864a56',1.79622744038901710505e+09,'processing','test','n1');
INSERT INTO "history" VALUES(10,'6b104170c235708dddf16bad','6b104170fceb52a891864a56',1.79622744038911128046e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(11,'6b104170c235708dddf16bad','6b104170fceb52a891864a56',1.7962274403891794681e+09,'processing','test','n1');
INSERT INTO "history" VALUES(12,'6b104170374a60a59b1ea1f3','6b104170fceb52a891864a56',1.7962274403940241337e+09,'succeeded','exit code 0','n1');
INSERT INTO "history" VALUES(13,'6b10417035cb390a18010f39','6b104170fceb52a891864a56',1.79622744039428877834e+09,'failed','exit code 2','n1');
INSERT INTO "history" VALUES(14,'6b104170c235708dddf16bad','6b104170fceb52a891864a56',1.79622744039441585538e+09,'cancelled','cancelled by the test','n1');
INSERT INTO "history" VALUES(15,'6b10417023db1e44324ddb96','6b104170aa10552bba14c6db',1.79622744039451766014e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(16,'6b10417023db1e44324ddb96','6b104170aa10552bba14c6db',1.79622744039461350439e+09,'processing','test','n2');
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
INSERT INTO "tokens" VALUES('2bb7902e8c64f7716e29ccbfcd7e8cf03f2474b6072f246bc620027595c12329','alice',4.94982744065065288557e+09,1.79622744065065312389e+09,'access');
INSERT INTO "tokens" VALUES('d66733334dbb4acc4a91f861b5ebac5a32824a17873c4e57db1cb74bd2614828','bob',4949827440.65083,1796227440.65083,'access');
CREATE TABLE "users" (
   "name" TEXT PRIMARY KEY,
   "hash" BLOB,
   "salt" BLOB,
   "is_admin" INTEGER,
   "created_at" REAL
);
INSERT INTO "users" VALUES('alice',X'03C996B91126D24FE11F0FA852BBCF541E24BDF3499C00EF11900861438570F9',X'1367AE4E795B3D96DE7F357BE4819CD9',1,1.79622744039747738844e+09);
INSERT INTO "users" VALUES('bob',X'967814B669F60EA58557A5F27377C71F8B4F87C0B00044AE70BCD3D0F6E966E4',X'8A505343AC86D47D0EAA31B051A479E6',0,1.79622744051577401154e+09);
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
