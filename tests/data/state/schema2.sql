-- written by faice at d164aaa (schema 2)
PRAGMA user_version=2;
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
INSERT INTO "batches" VALUES('6b10416dff3c3d5db357e6e6','6b10416dab680ac4dc493a79',0,'succeeded',0,1.79622743706809115402e+09,1.79622743706896066664e+09,'n1','["echo", "a"]',0,NULL,'{"out": {"class": "File", "size": 3}}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416dc1fb2301887e5808','6b10416dab680ac4dc493a79',1,'failed',2,1.79622743706809115402e+09,1.7962274370690231323e+09,'n1','["echo", "b"]',2,'it failed','{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416db282416e80fb357d','6b10416dab680ac4dc493a79',2,'cancelled',0,1.79622743706809115402e+09,1.79622743706907153126e+09,'n1','["echo", "c"]',NULL,NULL,'{}','cccccccccccc','ann');
INSERT INTO "batches" VALUES('6b10416deed3ef0c79fa5214','6b10416d7824bb5eaea7cf30',0,'registered',0,1.79622743706843137744e+09,1.79622743706843137744e+09,NULL,'["true"]',NULL,NULL,'{}',NULL,'alice');
INSERT INTO "batches" VALUES('6b10416d6d5b6748bd386489','6b10416d7824bb5eaea7cf30',1,'processing',0,1.79622743706843137744e+09,1.79622743706920337675e+09,'n2','["true"]',NULL,NULL,'{}',NULL,'alice');
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
INSERT INTO "experiments" VALUES('6b10416dab680ac4dc493a79',1.79622743706809115402e+09,'ann','one.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',3,'busybox','docker',23223,'vm');
INSERT INTO "experiments" VALUES('6b10416d7824bb5eaea7cf30',1.79622743706843137744e+09,'alice','two.red.yml','{"redVersion": "9", "cli": {"baseCommand": "echo"}, "container": {"engine": "docker", "settings": {"image": {"url": "busybox"}, "ram": 256}}}',2,'busybox',NULL,23223,'vm');
CREATE TABLE "history" (
   "id" INTEGER PRIMARY KEY,
   "batch_id" TEXT REFERENCES "batches"("id"),
   "experiment_id" TEXT,
   "time" REAL,
   "state" TEXT,
   "reason" TEXT
);
INSERT INTO "history" VALUES(1,'6b10416dff3c3d5db357e6e6','6b10416dab680ac4dc493a79',1.79622743706809115402e+09,'registered','submitted');
INSERT INTO "history" VALUES(2,'6b10416dc1fb2301887e5808','6b10416dab680ac4dc493a79',1.79622743706809115402e+09,'registered','submitted');
INSERT INTO "history" VALUES(3,'6b10416db282416e80fb357d','6b10416dab680ac4dc493a79',1.79622743706809115402e+09,'registered','submitted');
INSERT INTO "history" VALUES(4,'6b10416deed3ef0c79fa5214','6b10416d7824bb5eaea7cf30',1.79622743706843137744e+09,'registered','submitted');
INSERT INTO "history" VALUES(5,'6b10416d6d5b6748bd386489','6b10416d7824bb5eaea7cf30',1.79622743706843137744e+09,'registered','submitted');
INSERT INTO "history" VALUES(6,'6b10416dff3c3d5db357e6e6','6b10416dab680ac4dc493a79',1.79622743706861782075e+09,'scheduled','test');
INSERT INTO "history" VALUES(7,'6b10416dff3c3d5db357e6e6','6b10416dab680ac4dc493a79',1.79622743706875586506e+09,'processing','test');
INSERT INTO "history" VALUES(8,'6b10416dc1fb2301887e5808','6b10416dab680ac4dc493a79',1.79622743706881141667e+09,'scheduled','test');
INSERT INTO "history" VALUES(9,'6b10416dc1fb2301887e5808','6b10416dab680ac4dc493a79',1.79622743706885123256e+09,'processing','test');
INSERT INTO "history" VALUES(10,'6b10416db282416e80fb357d','6b10416dab680ac4dc493a79',1.79622743706889057154e+09,'scheduled','test');
INSERT INTO "history" VALUES(11,'6b10416db282416e80fb357d','6b10416dab680ac4dc493a79',1.79622743706892490389e+09,'processing','test');
INSERT INTO "history" VALUES(12,'6b10416dff3c3d5db357e6e6','6b10416dab680ac4dc493a79',1.79622743706896066664e+09,'succeeded','exit code 0');
INSERT INTO "history" VALUES(13,'6b10416dc1fb2301887e5808','6b10416dab680ac4dc493a79',1.7962274370690231323e+09,'failed','exit code 2');
INSERT INTO "history" VALUES(14,'6b10416db282416e80fb357d','6b10416dab680ac4dc493a79',1.79622743706907153126e+09,'cancelled','cancelled by the test');
INSERT INTO "history" VALUES(15,'6b10416d6d5b6748bd386489','6b10416d7824bb5eaea7cf30',1.79622743706912970547e+09,'scheduled','test');
INSERT INTO "history" VALUES(16,'6b10416d6d5b6748bd386489','6b10416d7824bb5eaea7cf30',1.79622743706920337675e+09,'processing','test');
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
);
INSERT INTO "tokens" VALUES('d555fbb86a7629f01c7ae8b6bb6fd5bc9eaadb42b5753b906c67f0fdd7ba9b93','alice',4.94982743747920227042e+09,1.79622743747933530811e+09);
INSERT INTO "tokens" VALUES('2c48253b2073f7bffc88b0eacc951f547d58699484bf0554842ac8e4016d7b87','bob',4.94982743747938823712e+09,1.79622743747940063476e+09);
CREATE TABLE "users" (
   "name" TEXT PRIMARY KEY,
   "hash" BLOB,
   "salt" BLOB,
   "is_admin" INTEGER,
   "created_at" REAL
);
INSERT INTO "users" VALUES('alice',X'4F7D1BFAB3AD3E79F3243E47B4292E8B8514E48ADCA85FE790676F065EEE2B2F',X'9183DCA38D2CE051A416DB2E5E3F6BD3',1,1.79622743708498382566e+09);
INSERT INTO "users" VALUES('bob',X'C2E355DC9BFEDBAFE2E506D042A3DA7CD2868DE56F2469CA1598500B78D1019C',X'F15D55B43280D0B2BABEB9640F3C0AAA',0,1.79622743729699850079e+09);
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
CREATE INDEX "idx_batches_state_created_at"
    ON "batches" ("state", "created_at");
CREATE INDEX "idx_batches_username_created_at"
    ON "batches" ("username", "created_at");
CREATE INDEX "idx_batches_created_at"
    ON "batches" ("created_at");
CREATE INDEX "idx_history_batch_id_time"
    ON "history" ("batch_id", "time");
COMMIT;
