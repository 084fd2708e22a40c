// InterfaceWatcher on its own: existing links are reported before Start returns, later ones
// from its thread, and when notifications are lost (the socket overflows with ENOBUFS while
// the watcher is busy) a re-listing still reports the links that vanished meanwhile.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>

#include "agent/interface_watcher.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::PollUntil;
using test::RunOrThrow;
using test::ScopedNetnsEntry;

class Recorder {
 public:
  void Appeared(const LinkInfo& link) {
    std::unique_lock lock(mutex_);
    gate_open_.wait(lock, [&] { return open_; });
    present_[link.name] = link.ifindex;
  }
  void Vanished(uint32_t ifindex, const std::string& name) {
    std::lock_guard lock(mutex_);
    vanished_[name] = ifindex;
    present_.erase(name);
  }
  void SetGate(bool open) {
    {
      std::lock_guard lock(mutex_);
      open_ = open;
    }
    gate_open_.notify_all();
  }
  bool Present(const std::string& name) {
    std::lock_guard lock(mutex_);
    return present_.count(name) > 0;
  }
  bool VanishedName(const std::string& name) {
    std::lock_guard lock(mutex_);
    return vanished_.count(name) > 0;
  }

 private:
  std::mutex mutex_;
  std::condition_variable gate_open_;
  bool open_ = true;
  std::map<std::string, uint32_t> present_;
  std::map<std::string, uint32_t> vanished_;
};

TEST(InterfaceWatcher, ReportsLinksAndRecoversFromLostNotifications) {
  NetworkNamespace ns("watch");
  RunOrThrow(ns.Exec() + "ip link add rpwkeep type veth peer name rpwkeepp");
  RunOrThrow(ns.Exec() + "ip link add rpwgone type veth peer name rpwgonep");
  Recorder recorder;
  std::unique_ptr<InterfaceWatcher> watcher;
  {
    ScopedNetnsEntry inside(ns.name());
    auto started = InterfaceWatcher::Start(
        [&](const LinkInfo& link) { recorder.Appeared(link); },
        [&](uint32_t ifindex, const std::string& name) { recorder.Vanished(ifindex, name); });
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    watcher = std::move(started).value();
  }
  EXPECT_TRUE(recorder.Present("rpwkeep")) << "existing links are reported before Start returns";
  EXPECT_TRUE(recorder.Present("lo"));

  RunOrThrow(ns.Exec() + "ip link add rpwlate type veth peer name rpwlatep");
  ASSERT_TRUE(PollUntil([&] { return recorder.Present("rpwlate"); }));

  // Hold the watcher thread inside a callback, flood the socket until it overflows, and
  // delete a link while the notification of that is lost.
  recorder.SetGate(false);
  RunOrThrow(ns.Exec() + "ip link add rpwblock type veth peer name rpwblockp");
  const std::string batch = "/tmp/" + test::RunPrefix() + "-links.batch";
  {
    std::ofstream out(batch);
    for (int i = 0; i < 300; ++i) out << "link add rpwf" << i << " type veth peer name rpwf" << i << "p\n";
  }
  RunOrThrow(ns.Exec() + "ip -batch " + batch);
  std::remove(batch.c_str());
  RunOrThrow(ns.Exec() + "ip link del rpwgone");
  recorder.SetGate(true);

  ASSERT_TRUE(PollUntil([&] { return recorder.VanishedName("rpwgone"); }))
      << "the deletion was lost with the overflow, and the re-listing did not find it";
  EXPECT_FALSE(recorder.VanishedName("rpwkeep"));
  EXPECT_TRUE(PollUntil([&] { return recorder.Present("rpwf299"); }));
}

}  // namespace
}  // namespace regionpulse
