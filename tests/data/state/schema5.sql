-- written by faice at f46e29f (schema 5)
PRAGMA user_version=5;
BEGIN TRANSACTION;
CREATE TABLE batch_counts (experiment_id TEXT NOT NULL, username TEXT NOT NULL, node TEXT NOT NULL, state TEXT NOT NULL,
                                       n INTEGER NOT NULL, PRIMARY KEY (experiment_id, username, node, state)) WITHOUT ROWID;
INSERT INTO "batch_counts" VALUES('6b104171672dc6caf5f62002','alice','','registered',1);
INSERT INTO "batch_counts" VALUES('6b104171672dc6caf5f62002','alice','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b104171672dc6caf5f62002','alice','n2','processing',1);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','','registered',0);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','','scheduled',0);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','n1','cancelled',1);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','n1','failed',1);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','n1','processing',0);
INSERT INTO "batch_counts" VALUES('6b104171c14f2d026e97a290','ann','n1','succeeded',1);
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
INSERT INTO "batches" VALUES('6b104171a990f7b46abf36d9','6b104171c14f2d026e97a290',0,'succeeded',0,1.79622744174168348313e+09,1.79622744174278688427e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann','[{"state":"registered","time":1796227441.7416835,"node":null},{"state":"scheduled","time":1796227441.7422023,"node":null},{"state":"processing","time":1796227441.742395,"node":"n1"},{"state":"succeeded","time":1796227441.742787,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b104171c98e466c3c83cfa9','6b104171c14f2d026e97a290',1,'failed',2,1.79622744174168348313e+09,1.79622744174290013309e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann','[{"state":"registered","time":1796227441.7416835,"node":null},{"state":"scheduled","time":1796227441.7425232,"node":null},{"state":"processing","time":1796227441.7425969,"node":"n1"},{"state":"failed","time":1796227441.7429001,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b104171ca0bad5757bde18a','6b104171c14f2d026e97a290',2,'cancelled',0,1.79622744174168348313e+09,1.79622744176129555708e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann','[{"state":"registered","time":1796227441.7416835,"node":null},{"state":"scheduled","time":1796227441.7426653,"node":null},{"state":"processing","time":1796227441.7427244,"node":"n1"},{"state":"cancelled","time":1796227441.7612956,"node":"n1"}]');
INSERT INTO "batches" VALUES('6b1041712e5ca040d06549a2','6b104171672dc6caf5f62002',0,'registered',0,1.79622744174203109743e+09,1.79622744174203109743e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice','[{"state": "registered", "time": 1796227441.742031, "node": null}]');
INSERT INTO "batches" VALUES('6b1041712c02eaa1e6c06e15','6b104171672dc6caf5f62002',1,'processing',0,1.79622744174203109743e+09,1.79622744176171231268e+09,'n2','["true"]',NULL,NULL,'{}',NULL,'alice','[{"state":"registered","time":1796227441.742031,"node":null},{"state":"scheduled","time":1796227441.7616076,"node":null},{"state":"processing","time":1796227441.7617123,"node":"n2"}]');
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
, "runner" TEXT, "ram" INTEGER, "retries" INTEGER, "settings" TEXT, "has_secrets" INTEGER, "outdir" TEXT);
INSERT INTO "experiments" VALUES('6b104171c14f2d026e97a290',1.79622744174168348313e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23268,'vm','exec',NULL,0,'{}',0,NULL);
INSERT INTO "experiments" VALUES('6b104171672dc6caf5f62002',1.79622744174203109743e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23268,'vm','serve',256,1,'{"gpus": 0}',0,NULL);
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
, "node" TEXT);
INSERT INTO "history" VALUES(1,'6b104171a990f7b46abf36d9','6b104171c14f2d026e97a290',1.79622744174168348313e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(2,'6b104171c98e466c3c83cfa9','6b104171c14f2d026e97a290',1.79622744174168348313e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(3,'6b104171ca0bad5757bde18a','6b104171c14f2d026e97a290',1.79622744174168348313e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(4,'6b1041712e5ca040d06549a2','6b104171672dc6caf5f62002',1.79622744174203109743e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(5,'6b1041712c02eaa1e6c06e15','6b104171672dc6caf5f62002',1.79622744174203109743e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(6,'6b104171a990f7b46abf36d9','6b104171c14f2d026e97a290',1.79622744174220228194e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(7,'6b104171a990f7b46abf36d9','6b104171c14f2d026e97a290',1.79622744174239492415e+09,'processing','test','n1');
INSERT INTO "history" VALUES(8,'6b104171c98e466c3c83cfa9','6b104171c14f2d026e97a290',1.79622744174252319338e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(9,'6b104171c98e466c3c83cfa9','6b104171c14f2d026e97a290',1.79622744174259686474e+09,'processing','test','n1');
INSERT INTO "history" VALUES(10,'6b104171ca0bad5757bde18a','6b104171c14f2d026e97a290',1.79622744174266529078e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(11,'6b104171ca0bad5757bde18a','6b104171c14f2d026e97a290',1.79622744174272441861e+09,'processing','test','n1');
INSERT INTO "history" VALUES(12,'6b104171a990f7b46abf36d9','6b104171c14f2d026e97a290',1.79622744174278688427e+09,'succeeded','exit code 0','n1');
INSERT INTO "history" VALUES(13,'6b104171c98e466c3c83cfa9','6b104171c14f2d026e97a290',1.79622744174290013309e+09,'failed','exit code 2','n1');
INSERT INTO "history" VALUES(14,'6b104171ca0bad5757bde18a','6b104171c14f2d026e97a290',1.79622744176129555708e+09,'cancelled','cancelled by the test','n1');
INSERT INTO "history" VALUES(15,'6b1041712c02eaa1e6c06e15','6b104171672dc6caf5f62002',1.79622744176160764693e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(16,'6b1041712c02eaa1e6c06e15','6b104171672dc6caf5f62002',1.79622744176171231268e+09,'processing','test','n2');
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
INSERT INTO "tokens" VALUES('f92147a28ff13c404afc59f99d609a0ae1087742785097fd8fa897fe85285918','alice',4.94982744211195564276e+09,1.7962274421119551658e+09,'access');
INSERT INTO "tokens" VALUES('81db25a0d4778ac36c71578c8b86cd82f9abeabc60c18f582616c2c5b46d7bff','bob',4.94982744211214542367e+09,1.7962274421121456623e+09,'access');
CREATE TABLE "users" (
   "name" TEXT PRIMARY KEY,
   "hash" BLOB,
   "salt" BLOB,
   "is_admin" INTEGER,
   "created_at" REAL
);
INSERT INTO "users" VALUES('alice',X'FB00BC51C154505689B012BA960DB5C9E6216F0E8609F508F4937506A81A4FD2',X'3819A1567E5AB39BCB0126029FA04FC2',1,1796227441.77777);
INSERT INTO "users" VALUES('bob',X'70FE2488FD6EC1A372FAA8EADF3AE5AF24800C71FB4407C3703F0C43A03E6E16',X'EBAEB117B32CB1F14EFAA87EBFD5E8E7',0,1.79622744193447208401e+09);
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
