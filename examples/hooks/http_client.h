#pragma once
// The few lines of libcurl (easy API) the twins fetch with, as a C++ user
// would write them. libcurl knows nothing of fern: with fern::hooks linked
// and patched, its connect/poll/recv park only the calling greenlet.
#include <curl/curl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fern_examples {

struct HttpResponse {
  long status = 0;
  std::string body;
};

// GET (or POST of `form`, application/x-www-form-urlencoded) url; throws
// std::runtime_error with curl's message on failure.
inline HttpResponse http_request(const std::string& url, const std::string* form = nullptr,
                                 const std::vector<std::string>& headers = {}) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw std::runtime_error("curl_easy_init failed");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list(nullptr, curl_slist_free_all);
  for (const std::string& h : headers) list.reset(curl_slist_append(list.release(), h.c_str()));
  HttpResponse response;
  auto append = +[](char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  };
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  if (list) curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list.get());
  if (form) curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, form->c_str());
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) throw std::runtime_error(url + ": " + curl_easy_strerror(rc));
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

inline HttpResponse http_get(const std::string& url) { return http_request(url); }

// curl_global_init / curl_global_cleanup for main's scope.
struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
};

}  // namespace fern_examples
