// SQL obfuscation. Every expected output is the Datadog Agent's, from pkg/obfuscate/sql_test.go (the
// test function is named per case) unless marked "dogwatch".
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "trace-agent/obfuscate/internal.h"
#include "trace-agent/obfuscate/obfuscate.h"
#include "trace-agent/obfuscate/sql_tokenizer.h"

namespace dogwatch::trace {
namespace {

struct SqlCase {
  std::string in;
  std::string out;
};

// A fresh obfuscator per query, so the learned escape convention of one case cannot leak into another.
absl::StatusOr<std::string> Obfuscate(std::string_view query, SqlObfuscationOptions sql = {}) {
  ObfuscationOptions options;
  options.sql = std::move(sql);
  Obfuscator obfuscator(options);
  absl::StatusOr<std::shared_ptr<const ObfuscatedQuery>> result = obfuscator.ObfuscateSql(query);
  if (!result.ok()) return result.status();
  return (*result)->query;
}

void CheckCases(const std::vector<SqlCase>& cases, const SqlObfuscationOptions& sql = {}) {
  for (const SqlCase& c : cases) {
    INFO("query: " << c.in);
    absl::StatusOr<std::string> out = Obfuscate(c.in, sql);
    REQUIRE(out.ok());
    CHECK(*out == c.out);
  }
}

TEST_CASE("SQL: TestSQLQuantizer") {
  CheckCases({
      {"select * from users where id = 42", "select * from users where id = ?"},
      {"select * from users where float = .43422", "select * from users where float = ?"},
      {"SELECT host, status FROM ec2_status WHERE org_id = 42",
       "SELECT host, status FROM ec2_status WHERE org_id = ?"},
      {"SELECT host, status FROM ec2_status WHERE org_id=42",
       "SELECT host, status FROM ec2_status WHERE org_id = ?"},
      {"-- get user \n--\n select * \n   from users \n    where\n       id = 214325346",
       "select * from users where id = ?"},
      {"SELECT * FROM `host` WHERE `id` IN (42, 43) /*comment with "
       "parameters,host:localhost,url:controller#home,"
       "id:FF005:00CAA*/",
       "SELECT * FROM host WHERE id IN ( ? )"},
      {"SELECT `host`.`address` FROM `host` WHERE org_id=42",
       "SELECT host . address FROM host WHERE org_id = ?"},
      {R"(SELECT "host"."address" FROM "host" WHERE org_id=42)",
       "SELECT host . address FROM host WHERE org_id = ?"},
      {"SELECT * FROM host WHERE id IN (42, 43) /*\n\t\t\tmultiline comment with "
       "parameters,\n\t\t\thost:localhost,"
       "url:controller#home,id:FF005:00CAA\n\t\t\t*/",
       "SELECT * FROM host WHERE id IN ( ? )"},
      {"UPDATE user_dash_pref SET json_prefs = %(json_prefs)s, modified = '2015-08-27 22:10:32.492912' WHERE "
       "user_id "
       "= %(user_id)s AND url = %(url)s",
       "UPDATE user_dash_pref SET json_prefs = ? modified = ? WHERE user_id = ? AND url = ?"},
      {"SELECT DISTINCT host.id AS host_id FROM host JOIN host_alias ON host_alias.host_id = host.id WHERE "
       "host.org_id = %(org_id_1)s AND host.name NOT IN (%(name_1)s) AND host.name IN (%(name_2)s, "
       "%(name_3)s, "
       "%(name_4)s, %(name_5)s)",
       "SELECT DISTINCT host.id FROM host JOIN host_alias ON host_alias.host_id = host.id WHERE host.org_id "
       "= ? AND "
       "host.name NOT IN ( ? ) AND host.name IN ( ? )"},
      {"SELECT org_id, metric_key FROM metrics_metadata WHERE org_id = %(org_id)s AND metric_key = "
       "ANY(array[75])",
       "SELECT org_id, metric_key FROM metrics_metadata WHERE org_id = ? AND metric_key = ANY ( array [ ? ] "
       ")"},
      {"SELECT org_id, metric_key   FROM metrics_metadata   WHERE org_id = %(org_id)s AND metric_key = "
       "ANY(array[21, 25, 32])",
       "SELECT org_id, metric_key FROM metrics_metadata WHERE org_id = ? AND metric_key = ANY ( array [ ? ] "
       ")"},
      {"SELECT articles.* FROM articles WHERE articles.id = 1 LIMIT 1",
       "SELECT articles.* FROM articles WHERE articles.id = ? LIMIT ?"},
      {"SELECT articles.* FROM articles WHERE articles.id = 1 LIMIT 1, 20",
       "SELECT articles.* FROM articles WHERE articles.id = ? LIMIT ?"},
      {"SELECT articles.* FROM articles WHERE articles.id = 1 LIMIT 1, 20;",
       "SELECT articles.* FROM articles WHERE articles.id = ? LIMIT ?"},
      {"SELECT articles.* FROM articles WHERE articles.id = 1 LIMIT 15,20;",
       "SELECT articles.* FROM articles WHERE articles.id = ? LIMIT ?"},
      {"SELECT articles.* FROM articles WHERE (articles.created_at BETWEEN '2016-10-31 23:00:00.000000' AND "
       "'2016-11-01 23:00:00.000000')",
       "SELECT articles.* FROM articles WHERE ( articles.created_at BETWEEN ? AND ? )"},
      {"SELECT articles.* FROM articles WHERE (articles.created_at BETWEEN $1 AND $2)",
       "SELECT articles.* FROM articles WHERE ( articles.created_at BETWEEN ? AND ? )"},
      {"SELECT articles.* FROM articles WHERE (articles.published != true)",
       "SELECT articles.* FROM articles WHERE ( articles.published != ? )"},
      {"SELECT articles.* FROM articles WHERE (title = 'guides.rubyonrails.org')",
       "SELECT articles.* FROM articles WHERE ( title = ? )"},
      {"SELECT articles.* FROM articles WHERE ( title = ? ) AND ( author = ? )",
       "SELECT articles.* FROM articles WHERE ( title = ? ) AND ( author = ? )"},
      {"SELECT articles.* FROM articles WHERE ( title = :title )",
       "SELECT articles.* FROM articles WHERE ( title = :title )"},
      {"SELECT articles.* FROM articles WHERE ( title = @title )",
       "SELECT articles.* FROM articles WHERE ( title = @title )"},
      {"SELECT date(created_at) as ordered_date, sum(price) as total_price FROM orders GROUP BY "
       "date(created_at) "
       "HAVING sum(price) > 100",
       "SELECT date ( created_at ), sum ( price ) FROM orders GROUP BY date ( created_at ) HAVING sum ( "
       "price ) > ?"},
      {"SELECT * FROM articles WHERE id > 10 ORDER BY id asc LIMIT 20",
       "SELECT * FROM articles WHERE id > ? ORDER BY id asc LIMIT ?"},
      {"SELECT clients.* FROM clients INNER JOIN posts ON posts.author_id = author.id AND posts.published = "
       "'t'",
       "SELECT clients.* FROM clients INNER JOIN posts ON posts.author_id = author.id AND posts.published = "
       "?"},
      {"SELECT articles.* FROM articles WHERE articles.id IN (1, 3, 5)",
       "SELECT articles.* FROM articles WHERE articles.id IN ( ? )"},
      {"SELECT * FROM clients WHERE (clients.first_name = 'Andy') LIMIT 15, 25 BEGIN INSERT INTO clients "
       "(created_at, first_name, locked, orders_count, updated_at) VALUES ('2011-08-30 05:22:57', 'Andy', 1, "
       "NULL, "
       "'2011-08-30 05:22:57') COMMIT",
       "SELECT * FROM clients WHERE ( clients.first_name = ? ) LIMIT ? BEGIN INSERT INTO clients ( "
       "created_at, "
       "first_name, locked, orders_count, updated_at ) VALUES ( ? ) COMMIT"},
      {"SAVEPOINT \"s139956586256192_x1\"", "SAVEPOINT ?"},
      {"INSERT INTO user (id, username) VALUES ('Fred','Smith'), ('John','Smith'), ('Michael','Smith'), "
       "('Robert','Smith');",
       "INSERT INTO user ( id, username ) VALUES ( ? )"},
      {"CREATE KEYSPACE Excelsior WITH replication = {'class': 'SimpleStrategy', 'replication_factor' : 3};",
       "CREATE KEYSPACE Excelsior WITH replication = ?"},
      {R"(SELECT "webcore_page"."id" FROM "webcore_page" WHERE "webcore_page"."slug" = %s ORDER BY "webcore_page"."path" ASC LIMIT 1)",
       "SELECT webcore_page . id FROM webcore_page WHERE webcore_page . slug = ? ORDER BY webcore_page . "
       "path ASC "
       "LIMIT ?"},
      {"SELECT server_table.host AS host_id FROM table#.host_tags as server_table WHERE server_table.host_id "
       "= 50",
       "SELECT server_table.host FROM table#.host_tags WHERE server_table.host_id = ?"},
      {R"sql(INSERT INTO delayed_jobs (attempts, created_at, failed_at, handler, last_error, locked_at, locked_by, priority, queue, run_at, updated_at) VALUES (0, '2016-12-04 17:09:59', NULL, '--- !ruby/object:Delayed::PerformableMethod\nobject: !ruby/object:Item\n  store:\n  - a simple string\n  - an \'escaped \' string\n  - another \'escaped\' string\n  - 42\n  string: a string with many \\\\\'escapes\\\\\'\nmethod_name: :show_store\nargs: []\n', NULL, NULL, NULL, 0, NULL, '2016-12-04 17:09:59', '2016-12-04 17:09:59'))sql",
       "INSERT INTO delayed_jobs ( attempts, created_at, failed_at, handler, last_error, locked_at, "
       "locked_by, "
       "priority, queue, run_at, updated_at ) VALUES ( ? )"},
      {"SELECT name, pretty_print(address) FROM people;",
       "SELECT name, pretty_print ( address ) FROM people"},
      {"* SELECT * FROM fake_data(1, 2, 3);", "* SELECT * FROM fake_data ( ? )"},
      {"CREATE FUNCTION add(integer, integer) RETURNS integer\n AS 'select $1 + $2;'\n LANGUAGE SQL\n "
       "IMMUTABLE\n "
       "RETURNS NULL ON NULL INPUT;",
       "CREATE FUNCTION add ( integer, integer ) RETURNS integer LANGUAGE SQL IMMUTABLE RETURNS ? ON ? "
       "INPUT"},
      {"SELECT * FROM public.table ( array [ ROW ( array [ 'magic', 'foo',",
       "SELECT * FROM public.table ( array [ ROW ( array [ ?"},
      {"SELECT pg_try_advisory_lock (123) AS t46eef3f025cc27feb31ca5a2d668a09a",
       "SELECT pg_try_advisory_lock ( ? )"},
      {"INSERT INTO `qual-aa`.issues (alert0 , alert1) VALUES (NULL, NULL)",
       "INSERT INTO qual-aa . issues ( alert0, alert1 ) VALUES ( ? )"},
      {"INSERT INTO user (id, email, name) VALUES (null, ?, ?)",
       "INSERT INTO user ( id, email, name ) VALUES ( ? )"},
      {"select * from users where id = 214325346     # This comment continues to the end of line",
       "select * from users where id = ?"},
      {"select * from users where id = 214325346     -- This comment continues to the end of line",
       "select * from users where id = ?"},
      {"SELECT * FROM /* this is an in-line comment */ users;", "SELECT * FROM users"},
      {"SELECT /*! STRAIGHT_JOIN */ col1 FROM table1", "SELECT col1 FROM table1"},
      {"DELETE FROM t1\n\t\t\tWHERE s11 > ANY\n\t\t\t(SELECT COUNT(*) /* no hint */ FROM t2\n\t\t\tWHERE NOT "
       "EXISTS\n\t\t\t(SELECT * FROM t3\n\t\t\tWHERE ROW(5*t2.s1,77)=\n\t\t\t(SELECT 50,11*s1 FROM t4 UNION "
       "SELECT "
       "50,77 FROM\n\t\t\t(SELECT * FROM t5) AS t5)));",
       "DELETE FROM t1 WHERE s11 > ANY ( SELECT COUNT ( * ) FROM t2 WHERE NOT EXISTS ( SELECT * FROM t3 "
       "WHERE ROW ( "
       "? * t2.s1, ? ) = ( SELECT ? * s1 FROM t4 UNION SELECT ? FROM ( SELECT * FROM t5 ) ) ) )"},
      {"SET @g = 'POLYGON((0 0,10 0,10 10,0 10,0 0),(5 5,7 5,7 7,5 7, 5 5))';", "SET @g = ?"},
      {"SELECT daily_values.*,\n                    LEAST((5040000 - @runtot), value) AS value,\n            "
       "        "
       "(@runtot := @runtot + daily_values.value) AS total FROM (SELECT @runtot:=0) AS n, `daily_values`  "
       "WHERE "
       "`daily_values`.`subject_id` = 12345 AND `daily_values`.`subject_type` = 'Skippity' AND "
       "(daily_values.date "
       "BETWEEN '2018-05-09' AND '2018-06-19') HAVING value >= 0 ORDER BY date",
       "SELECT daily_values.*, LEAST ( ( ? - @runtot ), value ), ( @runtot := @runtot + daily_values.value ) "
       "FROM ( "
       "SELECT @runtot := ? ), daily_values WHERE daily_values . subject_id = ? AND daily_values . "
       "subject_type = ? "
       "AND ( daily_values.date BETWEEN ? AND ? ) HAVING value >= ? ORDER BY date"},
      {"    SELECT\n      t1.userid,\n      t1.fullname,\n      DATE_FORMAT( t1.lastmod, \"%m/%d/%Y "
       "%h:%i:%s\" ) AS "
       "lastmod,\n      t1.lastmod AS lastmod_raw\n    FROM\n           userdata      AS t1\n      LEFT JOIN "
       "lawfirm_names AS t2 ON t1.firm_id = t2.firm_id\n    WHERE\n      t1.userid = 'jstein'\n\n  ",
       "SELECT t1.userid, t1.fullname, DATE_FORMAT ( t1.lastmod, %m/%d/%Y %h:%i:%s ), t1.lastmod FROM "
       "userdata LEFT "
       "JOIN lawfirm_names ON t1.firm_id = t2.firm_id WHERE t1.userid = ?"},
      {"SELECT [b].[BlogId], [b].[Name]\nFROM [Blogs] AS [b]\nORDER BY [b].[Name]",
       "SELECT [ b ] . [ BlogId ], [ b ] . [ Name ] FROM [ Blogs ] ORDER BY [ b ] . [ Name ]"},
      {"SELECT * FROM users WHERE firstname=''", "SELECT * FROM users WHERE firstname = ?"},
      {"SELECT * FROM users WHERE firstname=' '", "SELECT * FROM users WHERE firstname = ?"},
      {R"(SELECT * FROM users WHERE firstname="")", "SELECT * FROM users WHERE firstname = ?"},
      {R"(SELECT * FROM users WHERE lastname=" ")", "SELECT * FROM users WHERE lastname = ?"},
      {"SELECT * FROM users WHERE lastname=\"\t \"", "SELECT * FROM users WHERE lastname = ?"},
      {R"(SELECT customer_item_list_id, customer_id FROM customer_item_list WHERE type = wishlist AND customer_id = ? AND visitor_id IS ? UNION SELECT customer_item_list_id, customer_id FROM customer_item_list WHERE type = wishlist AND customer_id IS ? AND visitor_id = "AA0DKTGEM6LRN3WWPZ01Q61E3J7ROX7O" ORDER BY customer_id DESC)",
       "SELECT customer_item_list_id, customer_id FROM customer_item_list WHERE type = wishlist AND "
       "customer_id = ? "
       "AND visitor_id IS ? UNION SELECT customer_item_list_id, customer_id FROM customer_item_list WHERE "
       "type = "
       "wishlist AND customer_id IS ? AND visitor_id = ? ORDER BY customer_id DESC"},
      {R"(update Orders set created = "2019-05-24 00:26:17", gross = 30.28, payment_type = "eventbrite", mg_fee = "3.28", fee_collected = "3.28", event = 59366262, status = "10", survey_type = 'direct', tx_time_limit = 480, invite = "", ip_address = "69.215.148.82", currency = 'USD', gross_USD = "30.28", tax_USD = 0.00, journal_activity_id = 4044659812798558774, eb_tax = 0.00, eb_tax_USD = 0.00, cart_uuid = "160b450e7df511e9810e0a0c06de92f8", changed = '2019-05-24 00:26:17' where id = ?)",
       "update Orders set created = ? gross = ? payment_type = ? mg_fee = ? fee_collected = ? event = ? "
       "status = ? "
       "survey_type = ? tx_time_limit = ? invite = ? ip_address = ? currency = ? gross_USD = ? tax_USD = ? "
       "journal_activity_id = ? eb_tax = ? eb_tax_USD = ? cart_uuid = ? changed = ? where id = ?"},
      {R"(update Attendees set email = '626837270@qq.com', first_name = "贺新春送猪福加企鹅1054948000领98綵斤", last_name = '王子198442com体验猪多优惠', journal_activity_id = 4246684839261125564, changed = "2019-05-24 00:26:22" where id = 123)",
       "update Attendees set email = ? first_name = ? last_name = ? journal_activity_id = ? changed = ? "
       "where id = ?"},
      {R"(SELECT * FROM foo LEFT JOIN bar ON 'backslash\' = foo.b WHERE foo.name = 'String')",
       "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
      {R"(SELECT * FROM foo LEFT JOIN bar ON 'backslash\' = foo.b LEFT JOIN bar2 ON 'backslash2\' = foo.b2 WHERE foo.name = 'String')",
       "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b LEFT JOIN bar2 ON ? = foo.b2 WHERE foo.name = ?"},
      {R"(SELECT * FROM foo LEFT JOIN bar ON 'embedded ''quote'' in string' = foo.b WHERE foo.name = 'String')",
       "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
      {R"(SELECT * FROM foo LEFT JOIN bar ON 'embedded \'quote\' in string' = foo.b WHERE foo.name = 'String')",
       "SELECT * FROM foo LEFT JOIN bar ON ? = foo.b WHERE foo.name = ?"},
      {"SELECT org_id,metric_key,metric_type,interval FROM metrics_metadata WHERE org_id = ? AND metric_key "
       "= "
       "ANY(ARRAY[?,?,?,?,?])",
       "SELECT org_id, metric_key, metric_type, interval FROM metrics_metadata WHERE org_id = ? AND "
       "metric_key = ANY "
       "( ARRAY [ ? ] )"},
      {"SELECT wp_woocommerce_order_items.order_id As No_Commande\n\t\t\tFROM  "
       "wp_woocommerce_order_items\n\t\t\tLEFT "
       "JOIN\n\t\t\t\t(\n\t\t\t\t\tSELECT meta_value As Prenom\n\t\t\t\t\tFROM wp_postmeta\n\t\t\t\t\tWHERE "
       "meta_key "
       "= '_shipping_first_name'\n\t\t\t\t) AS a\n\t\t\tON wp_woocommerce_order_items.order_id = "
       "a.post_id\n\t\t\tWHERE  wp_woocommerce_order_items.order_id =2198",
       "SELECT wp_woocommerce_order_items.order_id FROM wp_woocommerce_order_items LEFT JOIN ( SELECT "
       "meta_value "
       "FROM wp_postmeta WHERE meta_key = ? ) ON wp_woocommerce_order_items.order_id = a.post_id WHERE "
       "wp_woocommerce_order_items.order_id = ?"},
      {"SELECT a :: VARCHAR(255) FROM foo WHERE foo.name = 'String'",
       "SELECT a :: VARCHAR ( ? ) FROM foo WHERE foo.name = ?"},
      {"{call px_cu_se_security_pg.sps_get_my_accounts_count(?, ?, ?, ?)}",
       "{ call px_cu_se_security_pg.sps_get_my_accounts_count ( ? ) }"},
      {"{call px_cu_se_security_pg.sps_get_my_accounts_count(1, 2, 'one', 'two')};",
       "{ call px_cu_se_security_pg.sps_get_my_accounts_count ( ? ) }"},
      {"{call curly_fun('{{', '}}', '}', '}')};", "{ call curly_fun ( ? ) }"},
      {"SELECT id, name FROM emp WHERE name LIKE {fn UCASE('Smith')}",
       "SELECT id, name FROM emp WHERE name LIKE ?"},
      {"select users.custom #- '{a,b}' from users", "select users.custom"},
      {"select users.custom #> '{a,b}' from users", "select users.custom"},
      {"SELECT a FROM foo WHERE value<@name", "SELECT a FROM foo WHERE value < @name"},
      {"SELECT @@foo", "SELECT @@foo"},
      {"DROP TABLE IF EXISTS django_site;\nDROP TABLE IF EXISTS knowledgebase_article;\n\nCREATE TABLE "
       "django_site "
       "(\n    id integer PRIMARY KEY,\n    domain character varying(100) NOT NULL,\n    disabled boolean "
       "DEFAULT "
       "false NOT NULL\n);\n\nINSERT INTO django_site(id, domain, name, uuid, disabled) VALUES (1, "
       "'foo.domain', "
       "'Foo', 'cb4776c1-edf3-4041-96a8-e152f5ae0f91', false);",
       "DROP TABLE IF EXISTS django_site DROP TABLE IF EXISTS knowledgebase_article CREATE TABLE django_site "
       "( id "
       "integer PRIMARY KEY, domain character varying ( ? ) NOT ? disabled boolean DEFAULT ? NOT ? ) INSERT "
       "INTO "
       "django_site ( id, domain, name, uuid, disabled ) VALUES ( ? )"},
      {"\nSELECT set_config('foo.bar', (SELECT foo.bar FROM sometable WHERE sometable.uuid = "
       "%(some_id)s)::text, "
       "FALSE);\nSELECT\n    othertable.id,\n    othertable.title\nFROM othertable\nINNER JOIN sometable ON "
       "sometable.id = othertable.site_id\nWHERE\n    sometable.uuid = %(some_id)s\nLIMIT 1\n;",
       "SELECT set_config ( ? ( SELECT foo.bar FROM sometable WHERE sometable.uuid = ? ) :: text, ? ) SELECT "
       "othertable.id, othertable.title FROM othertable INNER JOIN sometable ON sometable.id = "
       "othertable.site_id "
       "WHERE sometable.uuid = ? LIMIT ?"},
      {R"(CREATE OR REPLACE FUNCTION pg_temp.sequelize_upsert(OUT created boolean, OUT primary_key text) AS $func$ BEGIN INSERT INTO "school" ("id","organization_id","name","created_at","updated_at") VALUES ('dc4e9444-d7c9-40a9-bcef-68e4cc594e61','ec647f56-f27a-49a1-84af-021ad0a19f21','Test','2021-03-31 16:30:43.915 +00:00','2021-03-31 16:30:43.915 +00:00'); created := true; EXCEPTION WHEN unique_violation THEN UPDATE "school" SET "id"='dc4e9444-d7c9-40a9-bcef-68e4cc594e61',"organization_id"='ec647f56-f27a-49a1-84af-021ad0a19f21',"name"='Test',"updated_at"='2021-03-31 16:30:43.915 +00:00' WHERE ("id" = 'dc4e9444-d7c9-40a9-bcef-68e4cc594e61'); created := false; END; $func$ LANGUAGE plpgsql; SELECT * FROM pg_temp.sequelize_upsert();)",
       "CREATE OR REPLACE FUNCTION pg_temp.sequelize_upsert ( OUT created boolean, OUT primary_key text ) "
       "LANGUAGE "
       "plpgsql SELECT * FROM pg_temp.sequelize_upsert ( )"},
      {"INSERT INTO table (field1, field2) VALUES (1, $$someone's string123$with other things$$)",
       "INSERT INTO table ( field1, field2 ) VALUES ( ? )"},
      {"INSERT INTO table (field1) VALUES ($some tag$this text confuses$some other text$some ta not "
       "quite$some tag$)",
       "INSERT INTO table ( field1 ) VALUES ( ? )"},
      {R"(INSERT INTO table (field1) VALUES ($tag$random \wqejks "sadads' text$tag$))",
       "INSERT INTO table ( field1 ) VALUES ( ? )"},
      {"SELECT nspname FROM pg_class where nspname !~ '.*toIgnore.*'",
       "SELECT nspname FROM pg_class where nspname !~ ?"},
      {"SELECT nspname FROM pg_class where nspname !~* '.*toIgnoreInsensitive.*'",
       "SELECT nspname FROM pg_class where nspname !~* ?"},
      {"SELECT nspname FROM pg_class where nspname ~ '.*matching.*'",
       "SELECT nspname FROM pg_class where nspname ~ ?"},
      {"SELECT nspname FROM pg_class where nspname ~* '.*matchingInsensitive.*'",
       "SELECT nspname FROM pg_class where nspname ~* ?"},
      {"SELECT * FROM dbo.Items WHERE id = 1 or /*!obfuscation*/ 1 = 1",
       "SELECT * FROM dbo.Items WHERE id = ? or ? = ?"},
      {"SELECT * FROM Items WHERE id = -1 OR id = -01 OR id = -108 OR id = -.018 OR id = -.08 OR id = "
       "-908129",
       "SELECT * FROM Items WHERE id = ? OR id = ? OR id = ? OR id = ? OR id = ? OR id = ?"},
      {"USING $09 SELECT", "USING ? SELECT"},
      {"USING - SELECT", "USING - SELECT"},
  });
}

TEST_CASE("SQL: TestMultipleProcess and TestCanObfuscateAutoVacuum") {
  CheckCases({
      {"SELECT id FROM jq_jobs\nWHERE\nschedulable_at <= 1555367948 AND\nqueue_name = 'order_jobs' "
       "AND\nstatus = 1 "
       "AND\nid % 8 = 3\nORDER BY\nschedulable_at\nLIMIT 1000",
       "SELECT id FROM jq_jobs WHERE schedulable_at <= ? AND queue_name = ? AND status = ? AND id % ? = ? "
       "ORDER BY "
       "schedulable_at LIMIT ?"},
      {"autovacuum: VACUUM ANALYZE fake.table", "autovacuum : VACUUM ANALYZE fake.table"},
      {"autovacuum: VACUUM ANALYZE fake.table_downtime", "autovacuum : VACUUM ANALYZE fake.table_downtime"},
      {"autovacuum: VACUUM fake.big_table (to prevent wraparound)",
       "autovacuum : VACUUM fake.big_table ( to prevent wraparound )"},
  });
}

TEST_CASE("SQL: grouping and tokenizer corners (dogwatch, derived from sql.go / sql_tokenizer.go)") {
  CheckCases({
      // A '(' dropped inside a value group that turns out to start a subquery is given back.
      {"INSERT INTO t VALUES (1, 2), (SELECT a FROM b)", "INSERT INTO t VALUES ( ? ) ( SELECT a FROM b )"},
      // After a second value group the agent drops every following token (its grouping state is only
      // reset by a subquery), so multi-row inserts share one resource whatever follows them.
      {"SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))", "SELECT * FROM t WHERE ( a, b ) IN ( ( ? )"},
      {"INSERT INTO t (a) VALUES (1), (2) ON DUPLICATE KEY UPDATE a = 1", "INSERT INTO t ( a ) VALUES ( ? )"},
      // "-." not followed by a digit: the agent re-reads the next rune as a '.'.
      {"SELECT a -.b FROM t", "SELECT a -. b FROM t"},
      {"SELECT 1 -.", "SELECT ? - ."},
      // '#' starts a MySQL comment that skips the next character unconditionally.
      {"SELECT a #\nb\nFROM t", "SELECT a FROM t"},
      {"SELECT a FROM t # c\nWHERE b = 1", "SELECT a FROM t WHERE b = ?"},
  });
}

TEST_CASE("SQL: numbers (TestParseNumber), scientific notation, hex") {
  CheckCases({
      {"1234", "?"},
      {"-1234", "?"},
      {"1234e12", "?"},
      {"0xfa", "?"},
      {"01234567", "?"},
      {"09", "?"},
      {"-01234567", "?"},
      {"-012345678", "?"},
      // dogwatch: identifiers with digits stay, exponents and signs are part of the literal.
      {"SELECT * FROM table1 WHERE x = 1.5e-10 AND y = -2E+3 AND z = 0x1F",
       "SELECT * FROM table1 WHERE x = ? AND y = "
       "? AND z = ?"},
  });
}

TEST_CASE("SQL: TestKeepSQLAlias") {
  const std::string query = "SELECT username AS person FROM users WHERE id=4";
  CHECK(*Obfuscate(query) == "SELECT username FROM users WHERE id = ?");
  SqlObfuscationOptions keep;
  keep.keep_sql_alias = true;
  CHECK(*Obfuscate(query, keep) == "SELECT username AS person FROM users WHERE id = ?");
}

TEST_CASE("SQL: TestDollarQuotedFunc") {
  const std::string query = "SELECT $func$INSERT INTO table VALUES ('a', 1, 2)$func$ FROM users";
  CHECK(*Obfuscate(query) == "SELECT ? FROM users");
  SqlObfuscationOptions func;
  func.dollar_quoted_func = true;
  CHECK(*Obfuscate(query, func) == "SELECT $func$INSERT INTO table VALUES ( ? )$func$ FROM users");

  func.keep_sql_alias = true;
  CHECK(
      *Obfuscate(
          R"(CREATE OR REPLACE FUNCTION pg_temp.sequelize_upsert(OUT created boolean, OUT primary_key text) AS $func$ BEGIN INSERT INTO "school" ("id","organization_id","name","created_at","updated_at") VALUES ('dc4e9444-d7c9-40a9-bcef-68e4cc594e61','ec647f56-f27a-49a1-84af-021ad0a19f21','Test','2021-03-31 16:30:43.915 +00:00','2021-03-31 16:30:43.915 +00:00'); created := true; EXCEPTION WHEN unique_violation THEN UPDATE "school" SET "id"='dc4e9444-d7c9-40a9-bcef-68e4cc594e61',"organization_id"='ec647f56-f27a-49a1-84af-021ad0a19f21',"name"='Test',"updated_at"='2021-03-31 16:30:43.915 +00:00' WHERE ("id" = 'dc4e9444-d7c9-40a9-bcef-68e4cc594e61'); created := false; END; $func$ LANGUAGE plpgsql; SELECT * FROM pg_temp.sequelize_upsert();)",
          func) ==
      "CREATE OR REPLACE FUNCTION pg_temp.sequelize_upsert ( OUT created boolean, OUT primary_key text ) AS "
      "$func$BEGIN INSERT INTO school ( id, organization_id, name, created_at, updated_at ) VALUES ( ? ) "
      "created := ? "
      "EXCEPTION WHEN unique_violation THEN UPDATE school SET id = ? organization_id = ? name = ? updated_at "
      "= ? "
      "WHERE ( id = ? ) created := ? END$func$ LANGUAGE plpgsql SELECT * FROM pg_temp.sequelize_upsert ( )");

  // dogwatch: a crafted query nesting $func$ bodies deeply is still obfuscated, just not recursively.
  std::string nested = "SELECT ";
  for (int i = 0; i < 50; ++i) nested += "$func$$$func$";
  absl::StatusOr<std::string> out = Obfuscate(nested, func);
  CHECK((out.ok() || !out.status().message().empty()));
}

TEST_CASE("SQL: MSSQL (TestSingleDollarIdentifier, TestObfuscatorDBMSBehavior)") {
  SqlObfuscationOptions mssql;
  mssql.dbms = "mssql";
  CheckCases(
      {
          {"\n\tMERGE INTO Employees AS target\n\tUSING EmployeeUpdates AS source\n\tON (target.EmployeeID = "
           "source.EmployeeID)\n\tWHEN MATCHED THEN \n\t\tUPDATE SET \n\t\t\ttarget.Name = "
           "source.Name\n\tWHEN NOT "
           "MATCHED BY TARGET THEN \n\t\tINSERT (EmployeeID, Name)\n\t\tVALUES (source.EmployeeID, "
           "source.Name)\n\tWHEN "
           "NOT MATCHED BY SOURCE THEN \n\t\tDELETE\n\tOUTPUT $action, inserted.*, deleted.*;\n\t",
           "MERGE INTO Employees USING EmployeeUpdates ON ( target.EmployeeID = source.EmployeeID ) WHEN "
           "MATCHED THEN "
           "UPDATE SET target.Name = source.Name WHEN NOT MATCHED BY TARGET THEN INSERT ( EmployeeID, Name ) "
           "VALUES ( "
           "source.EmployeeID, source.Name ) WHEN NOT MATCHED BY SOURCE THEN DELETE OUTPUT $action, "
           "inserted.*, "
           "deleted.*"},
          {"select * from ##ThisIsAGlobalTempTable where id = 1",
           "select * from ##ThisIsAGlobalTempTable where id = ?"},
          {"select * from dbo.#ThisIsATempTable where id = 1",
           "select * from dbo.#ThisIsATempTable where id = ?"},
      },
      mssql);
  mssql.table_names = true;
  ObfuscationOptions options;
  options.sql = mssql;
  Obfuscator obfuscator(options);
  auto result = obfuscator.ObfuscateSql("SELECT * from [db_users] where [id] = @1");
  REQUIRE(result.ok());
  CHECK((*result)->query == "SELECT * from db_users where id = @1");
  CHECK((*result)->metadata.tables_csv == "db_users");
}

TEST_CASE("SQL: Postgres JSON operators (TestPGJSONOperators)") {
  SqlObfuscationOptions pg;
  pg.dbms = "postgresql";
  CheckCases(
      {
          {"select users.custom #> '{a,b}' from users", "select users.custom #> ? from users"},
          {"select users.custom #>> '{a,b}' from users", "select users.custom #>> ? from users"},
          {"select users.custom #- '{a,b}' from users", "select users.custom #- ? from users"},
          {"select users.custom -> 'foo' from users", "select users.custom -> ? from users"},
          {"select users.custom ->> 'foo' from users", "select users.custom ->> ? from users"},
          {"select * from users where user.custom @> '{a,b}'", "select * from users where user.custom @> ?"},
          {"SELECT a FROM foo WHERE value<@name", "SELECT a FROM foo WHERE value <@ name"},
          {"select * from users where user.custom ? 'foo'", "select * from users where user.custom ? ?"},
          {"select * from users where user.custom ?| array [ '1', '2' ]",
           "select * from users where user.custom ?| array [ ? ]"},
          {"select * from users where user.custom ?& array [ '1', '2' ]",
           "select * from users where user.custom ?& array [ ? ]"},
      },
      pg);
}

TEST_CASE("SQL: UTF-8 (TestSQLUTF8)") {
  CheckCases({
      {"SELECT Codi , Nom_CA AS Nom, Descripció_CAT AS Descripció FROM ProtValAptitud WHERE Vigent=1 ORDER "
       "BY Ordre, "
       "Codi",
       "SELECT Codi, Nom_CA, Descripció_CAT FROM ProtValAptitud WHERE Vigent = ? ORDER BY Ordre, Codi"},
      {"select * from dollarField$ as df from some$dollar$filled_thing$$;",
       "select * from dollarField$ from some$dollar$filled_thing$$"},
      {"select * from `構わない`;", "select * from 構わない"},
      {"select * from names where name like '�����';", "select * from names where name like ?"},
      {"select replacement from table where replacement = 'i�n�t�e��rspersed';",
       "select replacement from table where replacement = ?"},
      {"SELECT ('\uFFFD');", "SELECT ( ? )"},
  });
}

TEST_CASE("SQL: replace_digits (TestSQLReplaceDigits)") {
  SqlObfuscationOptions digits;
  digits.replace_digits = true;
  CheckCases(
      {
          {"REPLACE INTO sales_2019_07_01 (`itemID`, `date`, `qty`, `price`) VALUES ((SELECT itemID FROM "
           "item1001 "
           "WHERE `sku` = [sku]), CURDATE(), [qty], 0.00)",
           "REPLACE INTO sales_?_?_? ( itemID, date, qty, price ) VALUES ( ( SELECT itemID FROM item? WHERE "
           "sku = [ "
           "sku ] ), CURDATE ( ), [ qty ], ? )"},
          {"SELECT ddh19.name, ddt.tags FROM dd91219.host ddh19, dd21916.host_tags ddt WHERE ddh19.id = "
           "ddt.host_id "
           "AND ddh19.org_id = 2 AND ddh19.name = 'datadog'",
           "SELECT ddh?.name, ddt.tags FROM dd?.host ddh?, dd?.host_tags ddt WHERE ddh?.id = ddt.host_id AND "
           "ddh?.org_id = ? AND ddh?.name = ?"},
          {"SELECT ddu2.name, ddo.id10, ddk.app_key52 FROM dd3120.user ddu2, dd1931.orgs55 ddo, dd53819.keys "
           "ddk",
           "SELECT ddu?.name, ddo.id?, ddk.app_key? FROM dd?.user ddu?, dd?.orgs? ddo, dd?.keys ddk"},
      },
      digits);
  // Off: identifiers keep their digits.
  CheckCases(
      {{"SELECT ddu2.name, ddo.id10, ddk.app_key52 FROM dd3120.user ddu2, dd1931.orgs55 ddo, dd53819.keys "
        "ddk",
        "SELECT ddu2.name, ddo.id10, ddk.app_key52 FROM dd3120.user ddu2, dd1931.orgs55 ddo, dd53819.keys "
        "ddk"}});
}

TEST_CASE("SQL: table names with digit replacement (TestSQLTableFinderAndReplaceDigits)") {
  struct TableCase {
    std::string in, tables, out;
  };
  const TableCase cases[] = {
      {"select * from users where id = 42", "users", "select * from users where id = ?"},
      {"select * from `backslashes` where id = 42", "backslashes", "select * from backslashes where id = ?"},
      {R"(select * from "double-quotes" where id = 42)", "double-quotes",
       "select * from double-quotes where id = ?"},
      {"SELECT host, status FROM ec2_status WHERE org_id = 42", "ec?_status",
       "SELECT host, status FROM ec?_status WHERE org_id = ?"},
      {"SELECT * FROM (SELECT * FROM nested_table)", "nested_table",
       "SELECT * FROM ( SELECT * FROM nested_table )"},
      {"   -- get user \n--\n select * \n   from users \n    where\n       id = 214325346    ", "users",
       "select * from users where id = ?"},
      {"SELECT * FROM clients WHERE (clients.first_name = 'Andy') LIMIT 1 BEGIN INSERT INTO owners "
       "(created_at, "
       "first_name, locked, orders_count, updated_at) VALUES ('2011-08-30 05:22:57', 'Andy', 1, NULL, "
       "'2011-08-30 "
       "05:22:57') COMMIT",
       "clients,owners",
       "SELECT * FROM clients WHERE ( clients.first_name = ? ) LIMIT ? BEGIN INSERT INTO owners ( "
       "created_at, "
       "first_name, locked, orders_count, updated_at ) VALUES ( ? ) COMMIT"},
      {"DELETE FROM table WHERE table.a=1", "table", "DELETE FROM table WHERE table.a = ?"},
      {"REPLACE INTO sales_2019_07_01 (`itemID`, `date`, `qty`, `price`) VALUES ((SELECT itemID FROM "
       "item1001 WHERE "
       "`sku` = [sku]), CURDATE(), [qty], 0.00)",
       "sales_?_?_?,item?",
       "REPLACE INTO sales_?_?_? ( itemID, date, qty, price ) VALUES ( ( SELECT itemID FROM item? WHERE sku "
       "= [ sku "
       "] ), CURDATE ( ), [ qty ], ? )"},
      {"SELECT name FROM people WHERE person_id = -1", "people",
       "SELECT name FROM people WHERE person_id = ?"},
      {"select * from test where !is_good;", "test", "select * from test where ! is_good"},
      {"select * from test where !45;", "test", "select * from test where ! ?"},
      {"select * from test where !(select is_good from good_things);", "test,good_things",
       "select * from test where ! ( select is_good from good_things )"},
      {"select * from test where !'weird_query'", "test", "select * from test where ! ?"},
      {"select * from test where !\"weird_query\"", "test", "select * from test where ! weird_query"},
      {"select !- 2", "", "select ! - ?"},
      {"select !+2", "", "select ! + ?"},
      {"select count(*) as `count(*)` from test", "test", "select count ( * ) from test"},
      {"SELECT age as `age}` FROM profile", "profile", "SELECT age FROM profile"},
      {"SELECT age as `age``}` FROM profile", "profile", "SELECT age FROM profile"},
      {"SELECT * from users where user_id =:0_USER", "users", "SELECT * from users where user_id = :0_USER"},
  };
  SqlObfuscationOptions sql;
  sql.table_names = true;
  sql.replace_digits = true;
  ObfuscationOptions options;
  options.sql = sql;
  for (const TableCase& c : cases) {
    INFO(c.in);
    Obfuscator obfuscator(options);
    auto result = obfuscator.ObfuscateSql(c.in);
    REQUIRE(result.ok());
    CHECK((*result)->query == c.out);
    CHECK((*result)->metadata.tables_csv == c.tables);
  }
}

TEST_CASE("SQL: metadata (TestSQLMetadata)") {
  SqlObfuscationOptions sql;
  sql.table_names = true;
  sql.collect_commands = true;
  sql.collect_comments = true;
  ObfuscationOptions options;
  options.sql = sql;
  Obfuscator obfuscator(options);
  auto result = obfuscator.ObfuscateSql(
      "\n/* Multi-line comment */\nSELECT * FROM clients WHERE (clients.first_name = 'Andy') LIMIT 1 BEGIN "
      "INSERT "
      "INTO owners (created_at, first_name, locked, orders_count, updated_at) VALUES ('2011-08-30 05:22:57', "
      "'Andy', "
      "1, NULL, '2011-08-30 05:22:57') COMMIT");
  REQUIRE(result.ok());
  CHECK(
      (*result)->query ==
      "SELECT * FROM clients WHERE ( clients.first_name = ? ) LIMIT ? BEGIN INSERT INTO owners ( created_at, "
      "first_name, locked, orders_count, updated_at ) VALUES ( ? ) COMMIT");
  CHECK((*result)->metadata.tables_csv == "clients,owners");
  CHECK((*result)->metadata.commands == std::vector<std::string>{"SELECT", "BEGIN", "INSERT", "COMMIT"});
  CHECK((*result)->metadata.comments == std::vector<std::string>{"/* Multi-line comment */"});

  result = obfuscator.ObfuscateSql(
      "\n-- Single line comment\n-- Another single line comment\n-- Another another single line "
      "comment\nGRANT "
      "USAGE, DELETE ON SCHEMA datadog TO datadog");
  REQUIRE(result.ok());
  CHECK((*result)->query == "GRANT USAGE, DELETE ON SCHEMA datadog TO datadog");
  CHECK((*result)->metadata.commands == std::vector<std::string>{"GRANT", "DELETE"});
  CHECK((*result)->metadata.comments == std::vector<std::string>{"-- Single line comment",
                                                                 "-- Another single line comment",
                                                                 "-- Another another single line comment"});

  result = obfuscator.ObfuscateSql(
      "CREATE TRIGGER dogwatcher SELECT ON w1 BEFORE (UPDATE d1 SET (c1, c2, c3) = (c1 + 1, c2 + 1, c3 + "
      "1))");
  REQUIRE(result.ok());
  CHECK((*result)->query ==
        "CREATE TRIGGER dogwatcher SELECT ON w1 BEFORE ( UPDATE d1 SET ( c1, c2, c3 ) = ( c1 + ? c2 + ? c3 + "
        "? ) )");
  CHECK((*result)->metadata.tables_csv == "d1");

  result = obfuscator.ObfuscateSql(
      "\n-- Testing table value constructor SQL expression\nSELECT * FROM (VALUES (1, "
      "'dog')) AS d (id, animal)");
  REQUIRE(result.ok());
  CHECK((*result)->query == "SELECT * FROM ( VALUES ( ? ) ) ( id, animal )");
  CHECK((*result)->metadata.tables_csv.empty());
}

TEST_CASE("SQL: errors (TestSQLErrors)") {
  const SqlCase cases[] = {
      {"", "result is empty"},
      {"SELECT a FROM b WHERE a.x !* 2", R"(at position 27: unexpected char "*" (42) after "!")"},
      {"SELECT a FROM b WHERE a.x !& 2", R"(at position 27: unexpected char "&" (38) after "!")"},
      {"SELECT 🥒", "at position 11: unexpected byte 129362"},
      {"SELECT %(asd)| FROM profile",
       R"(at position 13: invalid character after variable identifier: "|" (124))"},
      {"USING $A FROM users", "at position 20: unexpected EOF in string"},
      {"INSERT VALUES (1, 2) INTO {ABC", "at position 30: unexpected EOF in escape sequence"},
      {"SELECT one, :.two FROM profile",
       R"(at position 13: bind variables should start with letters or digits, got "." (46))"},
      {"SELECT age FROM profile WHERE name='John \\", "at position 43: unexpected EOF in string"},
      {"SELECT age FROM profile WHERE name='John", "at position 41: unexpected EOF in string"},
      {"/* abcd", "at position 7: unexpected EOF in comment"},
      {"SELECT age FROM profile WHERE name='John\\' and place='John\\'s House'",
       "at position 59: unexpected byte 92"},
      {"SELECT age FROM profile WHERE place='John\\'s House' and name='John\\'",
       "at position 69: unexpected EOF in string"},
      {" \x80", "at position 1: invalid UTF-8 encoding beginning with 0x80"},
      {"\x3a\xdb", "at position 1: invalid UTF-8 encoding beginning with 0xdb"},
      {"select * from profile where age = \"\x3a\xeb\"",
       "at position 36: invalid UTF-8 encoding beginning with 0xeb"},
      // TestConsumerError
      {"SELECT * FROM users WHERE users.id = '1 AND users.name = 'dog'", ""},
  };
  for (const SqlCase& c : cases) {
    INFO("query: " << c.in);
    absl::StatusOr<std::string> out = Obfuscate(c.in);
    REQUIRE_FALSE(out.ok());
    if (!c.out.empty()) CHECK(std::string(out.status().message()) == c.out);
  }
}

TEST_CASE("SQL: the escape convention is learned (TestLiteralEscapesUpdates)") {
  Obfuscator obfuscator;
  // Standard quoting works either way and changes nothing.
  REQUIRE(obfuscator.ObfuscateSql("SELECT * FROM foo WHERE field1 = 'value1' AND field2 = 'value2'").ok());
  // Only parses with literal backslashes: the obfuscator switches and the next query benefits.
  auto result = obfuscator.ObfuscateSql(R"(SELECT * FROM foo WHERE name = 'backslash\' AND id ='1234')");
  REQUIRE(result.ok());
  CHECK((*result)->query == "SELECT * FROM foo WHERE name = ? AND id = ?");
  // ... and back when a query needs backslash escapes.
  result = obfuscator.ObfuscateSql(
      R"(SELECT * FROM foo WHERE name = 'embedded \'string\' in quotes' AND id ='1234')");
  REQUIRE(result.ok());
  CHECK((*result)->query == "SELECT * FROM foo WHERE name = ? AND id = ?");
  // Neither convention works: the first attempt's error is reported.
  CHECK(std::string(
            obfuscator.ObfuscateSql(R"(SELECT age FROM profile WHERE name='John\' and place='John\'s House')")
                .status()
                .message()) == "at position 59: unexpected byte 92");
  CHECK(obfuscator.stats().sql_errors == 1);
}

TEST_CASE("SQL tokenizer: strings with backslash escapes (TestSQLTokenizerIgnoreEscapeFalse)") {
  struct TokenCase {
    std::string in, text;
    sqlobf::TokenKind kind;
  };
  const TokenCase cases[] = {
      {R"('Simple string')", "Simple string", sqlobf::kString},
      {R"('String with backslash at end \')", "String with backslash at end '", sqlobf::kLexError},
      {R"('String with backslash \ in the middle')", "String with backslash  in the middle", sqlobf::kString},
      {R"('String with double-backslash at end \\')", "String with double-backslash at end \\",
       sqlobf::kString},
      {R"('String with backslash-escaped quote \' in middle')",
       "String with backslash-escaped quote ' in middle", sqlobf::kString},
      {R"('String with embedded string ''foo'' in the middle')",
       "String with embedded string 'foo' in the middle", sqlobf::kString},
      {"'String with newline\nin the middle'", "String with newline\nin the middle", sqlobf::kString},
      {R"('Simple string missing closing quote)", "Simple string missing closing quote", sqlobf::kLexError},
      {"::", "::", sqlobf::kColonCast},
  };
  for (const TokenCase& c : cases) {
    INFO(c.in);
    sqlobf::SqlTokenizer tokenizer(c.in, /*literal_escapes=*/false, sqlobf::Dbms::kGeneric, false);
    sqlobf::Token token = tokenizer.Scan();
    CHECK(token.kind == c.kind);
    CHECK(std::string(token.text) == c.text);
  }
}

TEST_CASE("SQL tokenizer: literal backslashes (TestSQLTokenizerIgnoreEscapeTrue)") {
  struct TokenCase {
    std::string in, text;
    sqlobf::TokenKind kind;
  };
  const TokenCase cases[] = {
      {R"('String with backslash at end \')", "String with backslash at end \\", sqlobf::kString},
      {R"('String with backslash \ in the middle')", "String with backslash \\ in the middle",
       sqlobf::kString},
      {R"('String with backslash-escaped quote at end \'')", "String with backslash-escaped quote at end \\'",
       sqlobf::kLexError},
      {R"('String with backslash-escaped quote \' in middle')", "String with backslash-escaped quote \\",
       sqlobf::kString},
  };
  for (const TokenCase& c : cases) {
    INFO(c.in);
    sqlobf::SqlTokenizer tokenizer(c.in, /*literal_escapes=*/true, sqlobf::Dbms::kGeneric, false);
    sqlobf::Token token = tokenizer.Scan();
    CHECK(token.kind == c.kind);
    CHECK(std::string(token.text) == c.text);
  }
}

TEST_CASE("SQL tokenizer: dollar-quoted strings (TestScanDollarQuotedString)") {
  struct DollarCase {
    std::string in;
    bool error;
  };
  const DollarCase cases[] = {
      {"$tag$abc$tag$", false},
      {"$func$abc$func$", false},
      {"$tag$ab$tactac$tx$tag$", false},
      {"$$abc$$", false},
      {"$$abc", true},
      {"$$abc$", true},
  };
  for (const DollarCase& c : cases) {
    INFO(c.in);
    sqlobf::SqlTokenizer tokenizer(c.in, false, sqlobf::Dbms::kGeneric, false);
    sqlobf::Token token = tokenizer.Scan();
    CHECK(token.kind == (c.error ? sqlobf::kLexError : sqlobf::kDollarQuotedString));
  }
  sqlobf::SqlTokenizer func("$func$abc$func$", false, sqlobf::Dbms::kGeneric, true);
  sqlobf::Token token = func.Scan();
  CHECK(token.kind == sqlobf::kDollarQuotedFunc);
  CHECK(std::string(token.text) == "abc");
  // The body of $tag$...$tag$ keeps partial delimiters.
  sqlobf::SqlTokenizer partial("$func$ab$fun$cd$func$", false, sqlobf::Dbms::kGeneric, true);
  CHECK(std::string(partial.Scan().text) == "ab$fun$cd");
}

TEST_CASE("SQL: unsupported obfuscation modes fall back to the legacy obfuscator") {
  ObfuscationOptions options;
  options.sql.obfuscation_mode = "obfuscate_and_normalize";
  Obfuscator obfuscator(options);
  auto result = obfuscator.ObfuscateSql("SELECT * FROM users WHERE id = 1");
  REQUIRE(result.ok());
  CHECK((*result)->query == "SELECT * FROM users WHERE id = ?");
  CHECK(obfuscator.stats().sql_mode_fallbacks == 1);
}

TEST_CASE("SQL cache: hits, misses, and both bounds") {
  ObfuscationOptions options;
  options.cache.max_entries = 2;
  Obfuscator obfuscator(options);
  REQUIRE(obfuscator.ObfuscateSql("SELECT 1").ok());
  auto first = obfuscator.ObfuscateSql("SELECT 1");
  REQUIRE(first.ok());
  CHECK((*first)->query == "SELECT ?");
  CHECK(obfuscator.stats().cache_hits == 1);
  CHECK(obfuscator.stats().cache_misses == 1);
  REQUIRE(obfuscator.ObfuscateSql("SELECT 2").ok());
  REQUIRE(obfuscator.ObfuscateSql("SELECT 3").ok());  // evicts "SELECT 1", the least recently used
  ObfuscatorStats stats = obfuscator.stats();
  CHECK(stats.cache_entries == 2);
  CHECK(stats.cache_evictions == 1);
  REQUIRE(obfuscator.ObfuscateSql("SELECT 1").ok());
  CHECK(obfuscator.stats().cache_misses == 4);
  // Failures are not cached.
  CHECK_FALSE(obfuscator.ObfuscateSql("SELECT '").ok());
  CHECK_FALSE(obfuscator.ObfuscateSql("SELECT '").ok());
  CHECK(obfuscator.stats().cache_misses == 6);

  ObfuscationOptions tiny;
  tiny.cache.max_bytes = 2 * 300;  // room for about two short entries
  Obfuscator small(tiny);
  for (int i = 0; i < 10; ++i) REQUIRE(small.ObfuscateSql("SELECT " + std::to_string(i)).ok());
  stats = small.stats();
  CHECK(stats.cache_bytes <= tiny.cache.max_bytes);
  CHECK(stats.cache_entries == 2);
  CHECK(stats.cache_evictions == 8);
  // An entry larger than the whole budget is simply not cached.
  REQUIRE(small.ObfuscateSql("SELECT " + std::string(1000, 'a')).ok());
  CHECK(small.stats().cache_entries == 2);

  ObfuscationOptions off;
  off.cache.enabled = false;
  Obfuscator uncached(off);
  REQUIRE(uncached.ObfuscateSql("SELECT 1").ok());
  REQUIRE(uncached.ObfuscateSql("SELECT 1").ok());
  CHECK(uncached.stats().cache_hits == 0);
  CHECK(uncached.stats().sql_queries == 2);
}

}  // namespace
}  // namespace dogwatch::trace
