// Feeds arbitrary bytes to the YAML loader and, split at the first NUL, to the env parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  dogwatch::config::Config config;
  (void)config.MergeYaml(text, "fuzz.yaml");
  (void)config.ToScrubbedYaml();

  std::string env_value = text.substr(0, text.find('\0'));
  std::string list = "DD_TAGS=" + env_value;
  std::string map = "DD_ADDITIONAL_ENDPOINTS=" + env_value;
  std::string port = "DD_APM_RECEIVER_PORT=" + env_value;
  std::string level = "DD_LOG_LEVEL=" + env_value;
  const char* environment[] = {list.c_str(), map.c_str(), port.c_str(), level.c_str(), nullptr};
  dogwatch::config::Config from_env;
  (void)from_env.MergeEnvironment(environment);
  return 0;
}
