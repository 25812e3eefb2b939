// Twin of gevent's tutorial program 47_image_downloader_local.py: fetch a
// page, pick the image URLs with an xpath, download each image in a
// greenlet (joined one at a time, as the seed does) and list the files.
// requests becomes libcurl, unmodified, made cooperative by
// fern::hooks::patch_all(); lxml's etree.HTML and xpath become libxml2's
// HTML parser and XPath. The site is the local stand-in (examples/hooks/);
// the images go to a fresh temporary directory, removed at the end.
#include <dirent.h>
#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"
#include "hooks/http_client.h"
#include "hooks/local_http.h"

namespace {

void downloader(const std::string& img_name, const std::string& img_url) {
  std::string img_content = fern_examples::http_get(img_url).body;
  std::ofstream f(img_name, std::ios::binary);  // file I/O stays blocking, as in gevent
  f << img_content;
}

// etree.HTML(text).xpath(expr) for attribute values.
std::vector<std::string> xpath_values(const std::string& html, const char* expr) {
  std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> doc(
      htmlReadMemory(html.data(), static_cast<int>(html.size()), nullptr, nullptr,
                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING),
      xmlFreeDoc);
  std::unique_ptr<xmlXPathContext, void (*)(xmlXPathContextPtr)> ctx(xmlXPathNewContext(doc.get()),
                                                                   xmlXPathFreeContext);
  std::unique_ptr<xmlXPathObject, void (*)(xmlXPathObjectPtr)> found(
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr), ctx.get()), xmlXPathFreeObject);
  std::vector<std::string> values;
  if (found && found->nodesetval) {
    for (int i = 0; i < found->nodesetval->nodeNr; ++i) {
      xmlChar* text = xmlNodeGetContent(found->nodesetval->nodeTab[i]);
      values.emplace_back(reinterpret_cast<const char*>(text));
      xmlFree(text);
    }
  }
  return values;
}

void download_all(const std::string& base) {
  fern_examples::HttpResponse r = fern_examples::http_get(base + "/portal.php");
  if (r.status == 200) {
    const char* img_src_xpath = "//div[@id=\"frameXWswSe\"]//div[@class=\"portal_block_summary\"]//li//img/@src";
    int count = 0;
    for (const std::string& img_src : xpath_values(r.body, img_src_xpath)) {
      ++count;
      std::string url = base + "/" + img_src;
      fern::joinall(fern::spawn(downloader, std::to_string(count) + ".jpg", url));
    }
  }
}

// What was downloaded, by name, with sizes; the files are removed after.
void list_and_remove() {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("."), closedir);
  while (dirent* e = readdir(dir.get()))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    struct stat st;
    stat(name.c_str(), &st);
    std::printf("%s %lld\n", name.c_str(), static_cast<long long>(st.st_size));
    unlink(name.c_str());
  }
}

}  // namespace

int main() {
  fern_examples::CurlGlobal curl;
  fern_examples::LocalHttp server;
  char dir[] = "/tmp/seed47-XXXXXX";
  if (mkdtemp(dir) == nullptr || chdir(dir) != 0) return 1;
  fern::hooks::patch_all();

  download_all(server.base());
  list_and_remove();
  if (chdir("/") == 0) rmdir(dir);
}
