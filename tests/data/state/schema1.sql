-- written by faice at f89e771 (schema 1)
PRAGMA user_version=1;
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
INSERT INTO "batches" VALUES('6b10416c62016f335b6ae033','6b10416c332cf29d38fe9ce5',0,'succeeded',0,1.7962274360512337684e+09,1.7962274360520017147e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416c1a09104ddbfa8fec','6b10416c332cf29d38fe9ce5',1,'failed',2,1.7962274360512337684e+09,1.7962274360520603657e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416ca8e6b61d66b2b058','6b10416c332cf29d38fe9ce5',2,'cancelled',0,1.7962274360512337684e+09,1.79622743605210685733e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416c9663e16ea3db95aa','6b10416c541ee677bc9d5d27',0,'registered',0,1.79622743605156183236e+09,1.79622743605156183236e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice');
INSERT INTO "batches" VALUES('6b10416caa39d10329904e10','6b10416c541ee677bc9d5d27',1,'processing',0,1.79622743605156183236e+09,1796227436.0522,'n2','["true"]',NULL,NULL,'{}',NULL,'alice');
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
);
INSERT INTO "experiments" VALUES('6b10416c332cf29d38fe9ce5',1.7962274360512337684e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23180,'vm');
INSERT INTO "experiments" VALUES('6b10416c541ee677bc9d5d27',1.79622743605156183236e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23180,'vm');
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
);
INSERT INTO "history" VALUES(1,'6b10416c62016f335b6ae033','6b10416c332cf29d38fe9ce5',1.7962274360512337684e+09,'registered','submitted');
INSERT INTO "history" VALUES(2,'6b10416c1a09104ddbfa8fec','6b10416c332cf29d38fe9ce5',1.7962274360512337684e+09,'registered','submitted');
INSERT INTO "history" VALUES(3,'6b10416ca8e6b61d66b2b058','6b10416c332cf29d38fe9ce5',1.7962274360512337684e+09,'registered','submitted');
INSERT INTO "history" VALUES(4,'6b10416c9663e16ea3db95aa','6b10416c541ee677bc9d5d27',1.79622743605156183236e+09,'registered','submitted');
INSERT INTO "history" VALUES(5,'6b10416caa39d10329904e10','6b10416c541ee677bc9d5d27',1.79622743605156183236e+09,'registered','submitted');
INSERT INTO "history" VALUES(6,'6b10416c62016f335b6ae033','6b10416c332cf29d38fe9ce5',1.7962274360516719818e+09,'scheduled','test');
INSERT INTO "history" VALUES(7,'6b10416c62016f335b6ae033','6b10416c332cf29d38fe9ce5',1.79622743605179047586e+09,'processing','test');
INSERT INTO "history" VALUES(8,'6b10416c1a09104ddbfa8fec','6b10416c332cf29d38fe9ce5',1.79622743605184197429e+09,'scheduled','test');
INSERT INTO "history" VALUES(9,'6b10416c1a09104ddbfa8fec','6b10416c332cf29d38fe9ce5',1.79622743605188488961e+09,'processing','test');
INSERT INTO "history" VALUES(10,'6b10416ca8e6b61d66b2b058','6b10416c332cf29d38fe9ce5',1.79622743605192470555e+09,'scheduled','test');
INSERT INTO "history" VALUES(11,'6b10416ca8e6b61d66b2b058','6b10416c332cf29d38fe9ce5',1.79622743605196356778e+09,'processing','test');
INSERT INTO "history" VALUES(12,'6b10416c62016f335b6ae033','6b10416c332cf29d38fe9ce5',1.7962274360520017147e+09,'succeeded','exit code 0');
INSERT INTO "history" VALUES(13,'6b10416c1a09104ddbfa8fec','6b10416c332cf29d38fe9ce5',1.7962274360520603657e+09,'failed','exit code 2');
INSERT INTO "history" VALUES(14,'6b10416ca8e6b61d66b2b058','6b10416c332cf29d38fe9ce5',1.79622743605210685733e+09,'cancelled','cancelled by the test');
INSERT INTO "history" VALUES(15,'6b10416caa39d10329904e10','6b10416c541ee677bc9d5d27',1.79622743605216455458e+09,'scheduled','test');
INSERT INTO "history" VALUES(16,'6b10416caa39d10329904e10','6b10416c541ee677bc9d5d27',1796227436.0522,'processing','test');
CREATE INDEX "idx_experiments_created_at"
    ON "experiments" ("created_at");
CREATE INDEX "idx_experiments_username_created_at"
    ON "experiments" ("username", "created_at");
CREATE UNIQUE INDEX "idx_batches_experiment_id_idx"
    ON "batches" ("experiment_id", "idx");
CREATE INDEX "idx_batches_state_created_at"
    ON "batches" ("state", "created_at");
CREATE INDEX "idx_batches_username_created_at"
    ON "batches" ("username", "created_at");
CREATE INDEX "idx_batches_created_at"
    ON "batches" ("created_at");
CREATE INDEX "idx_history_batch_id_time"
    ON "history" ("batch_id", "time");
COMMIT;
