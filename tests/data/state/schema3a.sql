-- written by faice at 28a66e9 (schema 3)
PRAGMA user_version=3;
BEGIN TRANSACTION;
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
);
INSERT INTO "batches" VALUES('6b10416e33eff361e4c68f12','6b10416ef90979cea66fe75f',0,'succeeded',0,1.79622743836132502557e+09,1.79622743836219286913e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416ebe7d84b24fa7bb6d','6b10416ef90979cea66fe75f',1,'failed',2,1.79622743836132502557e+09,1.79622743836225128174e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416e7370c7f420b235fa','6b10416ef90979cea66fe75f',2,'cancelled',0,1.79622743836132502557e+09,1.79622743836229634278e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416e2ca317e9369aa624','6b10416e535286dc333af088',0,'registered',0,1.79622743836161947246e+09,1.79622743836161947246e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice');
INSERT INTO "batches" VALUES('6b10416e24159e4dd96dbe48','6b10416e535286dc333af088',1,'processing',0,1.79622743836161947246e+09,1.79622743836240100863e+09,'n2','["true"]',NULL,NULL,'{}',NULL,'alice');
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
INSERT INTO "experiments" VALUES('6b10416ef90979cea66fe75f',1.79622743836132502557e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23244,'vm','exec',NULL,0,'{}',0);
INSERT INTO "experiments" VALUES('6b10416e535286dc333af088',1.79622743836161947246e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23244,'vm','serve',256,1,'{"gpus": 0}',0);
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
, "node" TEXT);
INSERT INTO "history" VALUES(1,'6b10416e33eff361e4c68f12','6b10416ef90979cea66fe75f',1.79622743836132502557e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(2,'6b10416ebe7d84b24fa7bb6d','6b10416ef90979cea66fe75f',1.79622743836132502557e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(3,'6b10416e7370c7f420b235fa','6b10416ef90979cea66fe75f',1.79622743836132502557e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(4,'6b10416e2ca317e9369aa624','6b10416e535286dc333af088',1.79622743836161947246e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(5,'6b10416e24159e4dd96dbe48','6b10416e535286dc333af088',1.79622743836161947246e+09,'registered','submitted',NULL);
INSERT INTO "history" VALUES(6,'6b10416e33eff361e4c68f12','6b10416ef90979cea66fe75f',1.79622743836182904245e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(7,'6b10416e33eff361e4c68f12','6b10416ef90979cea66fe75f',1.79622743836193871492e+09,'processing','test','n1');
INSERT INTO "history" VALUES(8,'6b10416ebe7d84b24fa7bb6d','6b10416ef90979cea66fe75f',1.79622743836200046544e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(9,'6b10416ebe7d84b24fa7bb6d','6b10416ef90979cea66fe75f',1.79622743836204648015e+09,'processing','test','n1');
INSERT INTO "history" VALUES(10,'6b10416e7370c7f420b235fa','6b10416ef90979cea66fe75f',1.79622743836209511759e+09,'scheduled','test',NULL);
INSERT INTO "history" VALUES(11,'6b10416e7370c7f420b235fa','6b10416ef90979cea66fe75f',1.79622743836214303963e+09,'processing','test','n1');
INSERT INTO "history" VALUES(12,'6b10416e33eff361e4c68f12','6b10416ef90979cea66fe75f',1.79622743836219286913e+09,'succeeded','exit code 0','n1');
INSERT INTO "history" VALUES(13,'6b10416ebe7d84b24fa7bb6d','6b10416ef90979cea66fe75f',1.79622743836225128174e+09,'failed','exit code 2','n1');
INSERT INTO "history" VALUES(14,'6b10416e7370c7f420b235fa','6b10416ef90979cea66fe75f',1.79622743836229634278e+09,'cancelled','cancelled by the test','n1');
INSERT INTO "history" VALUES(15,'6b10416e24159e4dd96dbe48','6b10416e535286dc333af088',1796227438.36236,'scheduled','test',NULL);
INSERT INTO "history" VALUES(16,'6b10416e24159e4dd96dbe48','6b10416e535286dc333af088',1.79622743836240100863e+09,'processing','test','n2');
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
INSERT INTO "tokens" VALUES('9a93d32d9ce68b46b590754441d9141246ab67d1edbf0e2cb8736d56d0bc932d','alice',4.94982743869769382461e+09,1.79622743869769406314e+09,'access');
INSERT INTO "tokens" VALUES('990e9932baa72ce9475cf570918dd28af283070bc250f0452880e46cd3c9ec43','bob',4.94982743869787311565e+09,1.79622743869787335397e+09,'access');
CREATE TABLE "users" (
   "name" TEXT PRIMARY KEY,
   "hash" BLOB,
   "salt" BLOB,
   "is_admin" INTEGER,
   "created_at" REAL
);
INSERT INTO "users" VALUES('alice',X'291B428B948531B109B6D495E09333B0A5D5188F76B266835ADCA88B387EB0E5',X'4342D670C420696D18A142B6C95D0C6B',1,1.79622743837732386585e+09);
INSERT INTO "users" VALUES('bob',X'20A97793CD2910B06095FD3BAFB742C4EEB62F25EB9BF2DA5761504329DB8695',X'44BECAE5684FBB2A350ED90D0C1B9FB6',0,1.79622743854104971886e+09);
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
COMMIT;
