#include "common/config/config.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "dogwatch/core.pb.h"

using dogwatch::config::Config;
using dogwatch::config::Source;

namespace {

struct Env {
  std::vector<std::string> storage;
  std::vector<const char*> pointers;
  explicit Env(std::vector<std::string> vars) : storage(std::move(vars)) {
    for (auto& v : storage) pointers.push_back(v.c_str());
    pointers.push_back(nullptr);
  }
  const char* const* get() const { return pointers.data(); }
};

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/dogwatch-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

}  // namespace

TEST_CASE("defaults apply when nothing is configured") {
  Config config;
  CHECK(config.GetInt("apm_config.receiver_port") == 8126);
  CHECK(config.GetString("site") == "datadoghq.com");
  CHECK(config.GetBool("apm_config.enabled"));
  CHECK(config.GetEntry("site").source == Source::kDefault);
  CHECK_FALSE(config.IsSet("site"));
}

TEST_CASE("precedence is default < file < environment") {
  std::string path = WriteTemp(
      "site: datadoghq.eu\n"
      "apm_config:\n"
      "  receiver_port: 9126\n"
      "  enabled: false\n"
      "log_level: debug\n");
  Env env({"DD_APM_RECEIVER_PORT=7126", "DD_LOG_LEVEL=WARN", "UNRELATED=1"});
  auto config = Config::Load({path, true, env.get()});
  REQUIRE(config.ok());
  CHECK(config->GetString("site") == "datadoghq.eu");
  CHECK(config->GetEntry("site").source == Source::kFile);
  CHECK(config->GetEntry("site").origin == path + ":1");
  CHECK(config->GetInt("apm_config.receiver_port") == 7126);
  CHECK(config->GetEntry("apm_config.receiver_port").origin == "DD_APM_RECEIVER_PORT");
  CHECK(config->GetString("log_level") == "warn");  // enum values are case-insensitive
  CHECK_FALSE(config->GetBool("apm_config.enabled"));
  std::remove(path.c_str());
}

TEST_CASE("documented aliases override the file") {
  std::string path = WriteTemp("apm_config:\n  enabled: false\n  apm_non_local_traffic: false\n");
  Env env({"DD_APM_ENABLED=true", "DD_APM_NON_LOCAL_TRAFFIC=true", "DD_SYSPROBE_SOCKET=/tmp/sp.sock",
           "DD_PROCESS_AGENT_ENABLED=true"});
  auto config = Config::Load({path, true, env.get()});
  REQUIRE(config.ok());
  CHECK(config->GetBool("apm_config.enabled"));
  CHECK(config->GetEntry("apm_config.enabled").origin == "DD_APM_ENABLED");
  CHECK(config->GetBool("apm_config.apm_non_local_traffic"));
  CHECK(config->GetString("system_probe_config.sysprobe_socket") == "/tmp/sp.sock");
  CHECK(config->GetBool("process_config.process_collection.enabled"));
  std::remove(path.c_str());
}

TEST_CASE("canonical env names are DD_ plus the upper-cased key") {
  CHECK(dogwatch::config::CanonicalEnvName("apm_config.receiver_port") == "DD_APM_CONFIG_RECEIVER_PORT");
  Env env({"DD_APM_CONFIG_RECEIVER_PORT=1234", "DD_AGENT_IPC_SOCKET=/x/agent.sock"});
  auto config = Config::Load({"", false, env.get()});
  REQUIRE(config.ok());
  CHECK(config->GetInt("apm_config.receiver_port") == 1234);
  CHECK(config->GetString("agent_ipc.socket") == "/x/agent.sock");
}

TEST_CASE("lists and maps from YAML and environment") {
  Config config;
  REQUIRE(config.MergeYaml("tags: [a:b, c]\nadditional_endpoints:\n  https://x.example: [k1, k2]\n", "t.yaml")
              .ok());
  CHECK(config.GetStringList("tags") == std::vector<std::string>{"a:b", "c"});
  CHECK(config.GetStringListMap("additional_endpoints").at("https://x.example").size() == 2);
  Env env({"DD_TAGS=team:x env:prod", R"(DD_ADDITIONAL_ENDPOINTS={"https://y.example": ["k3"]})"});
  REQUIRE(config.MergeEnvironment(env.get()).ok());
  CHECK(config.GetStringList("tags") == std::vector<std::string>{"team:x", "env:prod"});
  CHECK(config.GetStringListMap("additional_endpoints").count("https://y.example") == 1);
  Env json_list({R"(DD_TAGS=["a b", "c"])"});
  REQUIRE(config.MergeEnvironment(json_list.get()).ok());
  CHECK(config.GetStringList("tags") == std::vector<std::string>{"a b", "c"});
}

TEST_CASE("malformed YAML names the file and line") {
  Config config;
  auto status = config.MergeYaml("site: ok\napm_config:\n  receiver_port: [1, 2\n", "/etc/dw.yaml");
  REQUIRE_FALSE(status.ok());
  std::string message(status.message());
  CHECK_THAT(message, Catch::Contains("/etc/dw.yaml:"));
  CHECK_THAT(message, Catch::Contains("invalid YAML"));
}

TEST_CASE("a wrong type names the key, the line and the expected type") {
  Config config;
  auto status = config.MergeYaml("site: x\napm_config:\n  receiver_port: eighty\n", "dw.yaml");
  REQUIRE_FALSE(status.ok());
  std::string message(status.message());
  CHECK_THAT(message, Catch::Contains("dw.yaml:3"));
  CHECK_THAT(message, Catch::Contains("'apm_config.receiver_port'"));
  CHECK_THAT(message, Catch::Contains("expected integer"));
  CHECK_THAT(message, Catch::Contains("'eighty'"));

  auto list_status = config.MergeYaml("apm_config:\n  enabled: [1]\n", "dw.yaml");
  CHECK_THAT(std::string(list_status.message()), Catch::Contains("expected boolean, got a list"));
}

TEST_CASE("an unknown value for an enum from the environment is refused") {
  Env env({"DD_LOG_LEVEL=verbose"});
  auto config = Config::Load({"", false, env.get()});
  REQUIRE_FALSE(config.ok());
  std::string message(config.status().message());
  CHECK_THAT(message, Catch::Contains("DD_LOG_LEVEL"));
  CHECK_THAT(message, Catch::Contains("'verbose' is not one of"));
}

TEST_CASE("ranges and bad env numbers are refused with the variable name") {
  Env env({"DD_APM_RECEIVER_PORT=70000"});
  auto config = Config::Load({"", false, env.get()});
  REQUIRE_FALSE(config.ok());
  CHECK_THAT(std::string(config.status().message()), Catch::Contains("out of range"));
  Env bad({"DD_APM_ENABLED=maybe"});
  auto config2 = Config::Load({"", false, bad.get()});
  REQUIRE_FALSE(config2.ok());
  CHECK_THAT(std::string(config2.status().message()), Catch::Contains("DD_APM_ENABLED"));
  CHECK_THAT(std::string(config2.status().message()), Catch::Contains("expected boolean"));
}

TEST_CASE("a required file that does not exist is an error; an optional one is not") {
  auto missing = Config::Load({"/nonexistent/dogwatch.yaml", true, nullptr});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("/nonexistent/dogwatch.yaml"));
  CHECK(Config::Load({"/nonexistent/dogwatch.yaml", false, nullptr}).ok());
}

TEST_CASE("unknown keys are kept as warnings, sections must be mappings") {
  Config config;
  REQUIRE(config.MergeYaml("logs_enabled: true\napm_config:\n  some_future_key: 1\n", "f.yaml").ok());
  CHECK(config.unknown_keys() == std::vector<std::string>{"logs_enabled", "apm_config.some_future_key"});
  CHECK(config.MergeYaml("apm_config:\n", "f.yaml").ok());
  auto status = config.MergeYaml("apm_config: 3\n", "f.yaml");
  CHECK_THAT(std::string(status.message()), Catch::Contains("is a section and must be a mapping"));
}

TEST_CASE("alias bombs and deep nesting are bounded") {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  Config config;
  auto status = config.MergeYaml(bomb, "bomb.yaml");
  // Unknown keys are not expanded into options, but the walk still must not run away.
  CHECK((status.ok() || std::string(status.message()).find("nodes") != std::string::npos));

  std::string deep;
  for (int i = 0; i < 100; ++i) deep += std::string(i * 2, ' ') + "k" + std::to_string(i) + ":\n";
  deep += std::string(200, ' ') + "leaf: 1\n";
  auto deep_status = config.MergeYaml(deep, "deep.yaml");
  REQUIRE_FALSE(deep_status.ok());
  CHECK_THAT(std::string(deep_status.message()), Catch::Contains("nested deeper"));
}

TEST_CASE("secret handles are found, applied, and never printed") {
  Config config;
  REQUIRE(config
              .MergeYaml("api_key: ENC[dd_api_key]\nhostname: ENC[host]\n"
                         "additional_endpoints:\n  https://b.example: [\"ENC[second]\"]\n",
                         "s.yaml")
              .ok());
  auto refs = config.SecretReferences();
  REQUIRE(refs.size() == 3);
  REQUIRE(config.ApplySecrets({{"dd_api_key", "abcdef0123456789"}, {"host", "h1"}, {"second", "k2"}}).ok());
  CHECK(config.GetString("api_key") == "abcdef0123456789");
  CHECK(config.GetString("hostname") == "h1");
  std::string printed = config.ToScrubbedYaml();
  CHECK(printed.find("abcdef0123456789") == std::string::npos);
  CHECK(printed.find("k2") == std::string::npos);
  CHECK_THAT(printed, Catch::Contains("api_key: ENC[dd_api_key]"));

  dogwatch::core::ConfigSnapshot snapshot;
  config.ToSnapshot(&snapshot, 7);
  for (const auto& entry : snapshot.entries()) {
    CHECK(entry.key() != "api_key");
    CHECK(entry.key() != "hostname");  // a resolved secret stays in the core
  }
  CHECK_FALSE(config.ApplySecrets({}).ok() == false);  // nothing left to resolve
}

TEST_CASE("secret handles are refused in the backend's own settings") {
  Config config;
  auto status = config.MergeYaml("secret_backend_command: ENC[cmd]\n", "s.yaml");
  REQUIRE_FALSE(status.ok());
  CHECK_THAT(std::string(status.message()), Catch::Contains("not allowed"));
}

TEST_CASE("a sub-agent's config is the core's snapshot plus its own environment") {
  Config core;
  REQUIRE(
      core.MergeYaml("apm_config:\n  receiver_port: 9000\nenv: staging\napi_key: secret-key-1234\n", "c.yaml")
          .ok());
  dogwatch::core::ConfigSnapshot snapshot;
  core.ToSnapshot(&snapshot, 1);
  Env env({"DD_ENV=prod"});
  auto sub = Config::FromSnapshot(snapshot, env.get());
  INFO(sub.status().ToString());
  REQUIRE(sub.ok());
  CHECK(sub->GetInt("apm_config.receiver_port") == 9000);
  CHECK(sub->GetEntry("apm_config.receiver_port").source == Source::kCore);
  CHECK(sub->GetString("env") == "prod");
  CHECK(sub->GetString("api_key").empty());
}

TEST_CASE("octal socket modes") {
  Config config;
  REQUIRE(config.MergeYaml("agent_ipc:\n  socket_mode: 0600\n", "m.yaml").ok());
  CHECK(config.GetInt("agent_ipc.socket_mode") == 0600);
}

TEST_CASE("docs/configuration.md is generated from the option table and in sync") {
  std::ifstream in(std::string(DOGWATCH_TEST_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE(in.good());
  std::string committed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO("regenerate with: build/bin/agent config --docs > docs/configuration.md");
  CHECK(committed == dogwatch::config::OptionsReferenceMarkdown());
}
