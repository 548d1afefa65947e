# Finds passthru's dependencies, each only when the including project has
# not already provided its target.
find_package(Threads REQUIRED)
if(NOT TARGET CURL::libcurl)
  find_package(CURL 7.87 REQUIRED)  # CURLOPT_QUICK_EXIT: a hanging DNS lookup never blocks the loop
endif()
if(NOT TARGET OpenSSL::Crypto)
  find_package(OpenSSL 1.1.1 REQUIRED COMPONENTS Crypto)  # HMAC-SHA256 request signatures
endif()
if(NOT TARGET fmt::fmt)
  find_package(fmt 9 REQUIRED)
endif()
if(NOT TARGET spdlog::spdlog)
  find_package(spdlog 1.10 REQUIRED)
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3.10 REQUIRED)
endif()
