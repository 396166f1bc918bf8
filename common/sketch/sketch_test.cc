#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/sketch/ddsketch.h"

namespace dogwatch::sketch {
namespace {

namespace pb = google::protobuf;

// The exact quantile with the rank definition sketches-go uses (rank q×(n−1), the element at its floor).
double ExactQuantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<size_t>(std::floor(q * (static_cast<double>(sorted.size()) - 1)))];
}

void CheckAccuracy(const std::vector<double>& values, double accuracy, const std::vector<double>& quantiles) {
  DDSketch sketch(accuracy);
  for (double v : values) REQUIRE(sketch.Add(v));
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(sketch.count() == static_cast<double>(values.size()));
  for (double q : quantiles) {
    const double exact = ExactQuantile(sorted, q);
    const auto got = sketch.Quantile(q);
    REQUIRE(got.has_value());
    INFO("q=" << q << " exact=" << exact << " got=" << *got);
    CHECK(std::abs(*got - exact) <= accuracy * std::abs(exact) + 1e-9);
  }
  CHECK(sketch.min() == sorted.front());
  CHECK(sketch.max() == sorted.back());
}

const std::vector<double> kQuantiles = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};

// The sketches-go DDSketch schema, built at run time so the test checks our hand-written codec against
// libprotobuf's own parser and serializer (field numbers, packing, zigzag, map entries).
class SchemaPool {
 public:
  SchemaPool() {
    pb::FileDescriptorProto file;
    file.set_name("ddsketch_schema.proto");
    file.set_syntax("proto3");
    auto add_field = [](pb::DescriptorProto* msg, const char* name, int number,
                        pb::FieldDescriptorProto::Type type,
                        pb::FieldDescriptorProto::Label label = pb::FieldDescriptorProto::LABEL_OPTIONAL,
                        const char* type_name = nullptr) {
      auto* f = msg->add_field();
      f->set_name(name);
      f->set_number(number);
      f->set_type(type);
      f->set_label(label);
      if (type_name) f->set_type_name(type_name);
    };
    auto* mapping = file.add_message_type();
    mapping->set_name("IndexMapping");
    auto* interp = mapping->add_enum_type();
    interp->set_name("Interpolation");
    const char* names[] = {"NONE", "LINEAR", "QUADRATIC", "CUBIC"};
    for (int i = 0; i < 4; ++i) {
      auto* v = interp->add_value();
      v->set_name(names[i]);
      v->set_number(i);
    }
    add_field(mapping, "gamma", 1, pb::FieldDescriptorProto::TYPE_DOUBLE);
    add_field(mapping, "indexOffset", 2, pb::FieldDescriptorProto::TYPE_DOUBLE);
    add_field(mapping, "interpolation", 3, pb::FieldDescriptorProto::TYPE_ENUM,
              pb::FieldDescriptorProto::LABEL_OPTIONAL, ".IndexMapping.Interpolation");
    auto* store = file.add_message_type();
    store->set_name("Store");
    auto* entry = store->add_nested_type();
    entry->set_name("BinCountsEntry");
    entry->mutable_options()->set_map_entry(true);
    add_field(entry, "key", 1, pb::FieldDescriptorProto::TYPE_SINT32);
    add_field(entry, "value", 2, pb::FieldDescriptorProto::TYPE_DOUBLE);
    add_field(store, "binCounts", 1, pb::FieldDescriptorProto::TYPE_MESSAGE,
              pb::FieldDescriptorProto::LABEL_REPEATED, ".Store.BinCountsEntry");
    add_field(store, "contiguousBinCounts", 2, pb::FieldDescriptorProto::TYPE_DOUBLE,
              pb::FieldDescriptorProto::LABEL_REPEATED);
    add_field(store, "contiguousBinIndexOffset", 3, pb::FieldDescriptorProto::TYPE_SINT32);
    auto* sketch = file.add_message_type();
    sketch->set_name("DDSketch");
    add_field(sketch, "mapping", 1, pb::FieldDescriptorProto::TYPE_MESSAGE,
              pb::FieldDescriptorProto::LABEL_OPTIONAL, ".IndexMapping");
    add_field(sketch, "positiveValues", 2, pb::FieldDescriptorProto::TYPE_MESSAGE,
              pb::FieldDescriptorProto::LABEL_OPTIONAL, ".Store");
    add_field(sketch, "negativeValues", 3, pb::FieldDescriptorProto::TYPE_MESSAGE,
              pb::FieldDescriptorProto::LABEL_OPTIONAL, ".Store");
    add_field(sketch, "zeroCount", 4, pb::FieldDescriptorProto::TYPE_DOUBLE);
    file_ = pool_.BuildFile(file);
    REQUIRE(file_ != nullptr);
  }

  std::unique_ptr<pb::Message> NewSketch() {
    return std::unique_ptr<pb::Message>(
        factory_.GetPrototype(file_->FindMessageTypeByName("DDSketch"))->New());
  }

 private:
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
  const pb::FileDescriptor* file_ = nullptr;
};

const pb::FieldDescriptor* Field(const pb::Message& m, const char* name) {
  const auto* f = m.GetDescriptor()->FindFieldByName(name);
  REQUIRE(f != nullptr);
  return f;
}

TEST_CASE("mapping parameters match the agent's (alpha 0.01, gamma (1+a)/(1-a), offset 0)") {
  LogarithmicMapping m(0.01);
  CHECK(m.gamma() == Approx(1.0202020202020202).epsilon(1e-15));
  CHECK(m.index_offset() == 0);
  CHECK(m.Index(1) == 0);
  CHECK(m.Index(1000) == 345);
  CHECK(m.Index(1e9) == 1036);
  CHECK(m.Index(0.5) == -35);
  CHECK(m.Value(345) == Approx(1002.428008522162).epsilon(1e-12));
  // Every value of a bin is within alpha of the bin's value.
  for (double v : {1.0, 1.5, 999.0, 1001.0, 12345.678, 3e7}) {
    CHECK(std::abs(m.Value(m.Index(v)) - v) <= 0.01 * v * (1 + 1e-12));
  }
}

TEST_CASE("quantiles stay within 1% on various distributions") {
  std::mt19937_64 rng(42);
  const size_t n = 100000;
  std::vector<double> values(n);

  SECTION("uniform") {
    std::uniform_real_distribution<double> d(1, 1e6);
    for (auto& v : values) v = d(rng);
  }
  SECTION("exponential") {
    std::exponential_distribution<double> d(1e-6);
    for (auto& v : values) v = d(rng) + 1;
  }
  SECTION("lognormal latencies (ns)") {
    std::lognormal_distribution<double> d(13, 2);
    for (auto& v : values) v = d(rng);
  }
  SECTION("pareto heavy tail") {
    std::uniform_real_distribution<double> u(0, 1);
    for (auto& v : values) v = 1000 / std::pow(1 - u(rng), 1 / 1.2);
  }
  SECTION("integer nanosecond durations with many duplicates") {
    std::uniform_int_distribution<int> d(1, 50);
    for (auto& v : values) v = 1000.0 * d(rng);
  }
  CheckAccuracy(values, 0.01, kQuantiles);
}

TEST_CASE("negative values, zero and mixed signs") {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(0, 1000);
  std::vector<double> values(50000);
  for (auto& v : values) v = d(rng);
  for (size_t i = 0; i < 1000; ++i) values[i] = 0;
  CheckAccuracy(values, 0.01, kQuantiles);

  DDSketch s;
  CHECK_FALSE(s.Quantile(0.5).has_value());
  s.Add(0, 3);
  CHECK(s.zero_count() == 3);
  CHECK(*s.Quantile(0.5) == 0);
}

TEST_CASE("count, sum, min, max and fractional weights") {
  DDSketch s;
  CHECK(s.empty());
  s.Add(10);
  s.Add(20, 2.5);
  s.Add(-5);
  CHECK(s.count() == Approx(4.5));
  CHECK(s.sum() == Approx(10 + 50 - 5));
  CHECK(s.min() == -5);
  CHECK(s.max() == 20);
  CHECK_FALSE(s.Add(std::nan("")));
  CHECK_FALSE(s.Add(1, -1));
  CHECK_FALSE(s.Add(1, INFINITY));
  CHECK_FALSE(s.Add(1e308 * 10));
  CHECK(s.count() == Approx(4.5));
  CHECK_FALSE(s.Quantile(1.5).has_value());
  s.Clear();
  CHECK(s.empty());
  CHECK(s.count() == 0);
}

TEST_CASE("bins are bounded: the lowest ones collapse and high quantiles stay accurate") {
  const int32_t max_bins = 100;
  DDSketch s(0.01, max_bins);
  std::vector<double> values;
  for (double v = 1; v < 1e9; v *= 1.001) values.push_back(v);
  for (double v : values) s.Add(v);
  CHECK(s.positive_store().collapsed());
  CHECK(s.positive_store().span() <= static_cast<size_t>(max_bins));
  CHECK(s.count() == static_cast<double>(values.size()));
  std::vector<double> sorted = values;
  for (double q : {0.99, 0.995, 0.999, 1.0}) {
    const double exact = ExactQuantile(sorted, q);
    CHECK(std::abs(*s.Quantile(q) - exact) <= 0.01 * exact);
  }
  // Low quantiles lost their guarantee but never go below the true minimum.
  CHECK(*s.Quantile(0) >= 1);

  // The default bound is the agent's 2048, far from reached by realistic durations.
  DDSketch d;
  for (double v = 1; v < 1e12; v *= 1.01) d.Add(v);
  CHECK(d.positive_store().span() <= 2048);
}

TEST_CASE("merge equals adding everything to one sketch") {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(12, 1.5);
  DDSketch a, b, all;
  for (int i = 0; i < 20000; ++i) {
    double v = d(rng) * (i % 7 == 0 ? -1 : 1);
    (i % 3 ? a : b).Add(v);
    all.Add(v);
  }
  a.Add(0);
  all.Add(0);
  a.Merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.sum() == Approx(all.sum()));
  CHECK(a.min() == all.min());
  CHECK(a.max() == all.max());
  CHECK(a.zero_count() == all.zero_count());
  all.positive_store().ForEach([&](int32_t i, double c) { CHECK(a.positive_store().BinCount(i) == c); });
  all.negative_store().ForEach([&](int32_t i, double c) { CHECK(a.negative_store().BinCount(i) == c); });
  for (double q : kQuantiles) CHECK(*a.Quantile(q) == *all.Quantile(q));
  CHECK(a.Encode() == all.Encode());

  // Merging into an empty sketch and merging an empty one.
  DDSketch empty;
  empty.Merge(all);
  CHECK(empty.Encode() == all.Encode());
  all.Merge(DDSketch());
  CHECK(empty.count() == all.count());
}

TEST_CASE("merging sketches with different accuracies re-indexes bins") {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> d(100, 1e6);
  DDSketch fine(0.01), coarse(0.02);
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) {
    double v = d(rng);
    values.push_back(v);
    (i % 2 ? fine : coarse).Add(v);
  }
  fine.Merge(coarse);
  std::sort(values.begin(), values.end());
  CHECK(fine.count() == 20000);
  for (double q : kQuantiles)
    CHECK(std::abs(*fine.Quantile(q) - ExactQuantile(values, q)) <= 0.031 * ExactQuantile(values, q));
}

TEST_CASE("encoding: golden bytes for a single value") {
  DDSketch s;
  s.Add(1000);
  const std::string want(
      "\x0a\x09\x09\xfd\x4a\x81\x5a\xbf\x52\xf0\x3f\x12\x0d\x12\x08\x00\x00\x00\x00\x00\x00\xf0\x3f\x18\xb2"
      "\x05"
      "\x1a\x00",
      28);
  CHECK(s.Encode() == want);
  // An empty sketch still carries its mapping and two empty stores, like sketches-go's ToProto.
  CHECK(DDSketch().Encode().size() == 11 + 4);
}

TEST_CASE("encoding parses with libprotobuf and matches the sketches-go schema") {
  SchemaPool schema;
  DDSketch s;
  for (double v : {1.0, 2.0, 2.0, 1000.0, 5e6}) s.Add(v);
  s.Add(-3, 2);
  s.Add(0, 4);
  auto msg = schema.NewSketch();
  REQUIRE(msg->ParseFromString(s.Encode()));
  const auto* r = msg->GetReflection();
  const auto& mapping = r->GetMessage(*msg, Field(*msg, "mapping"));
  CHECK(mapping.GetReflection()->GetDouble(mapping, Field(mapping, "gamma")) == s.mapping().gamma());
  CHECK(mapping.GetReflection()->GetDouble(mapping, Field(mapping, "indexOffset")) == 0);
  CHECK(mapping.GetReflection()->GetEnumValue(mapping, Field(mapping, "interpolation")) == 0);
  CHECK(r->GetDouble(*msg, Field(*msg, "zeroCount")) == 4);

  const auto& pos = r->GetMessage(*msg, Field(*msg, "positiveValues"));
  const auto* pr = pos.GetReflection();
  const int32_t offset = pr->GetInt32(pos, Field(pos, "contiguousBinIndexOffset"));
  CHECK(offset == s.positive_store().min_index());
  const auto* counts = Field(pos, "contiguousBinCounts");
  CHECK(pr->FieldSize(pos, counts) == static_cast<int>(s.positive_store().span()));
  double total = 0;
  for (int i = 0; i < pr->FieldSize(pos, counts); ++i) {
    const double c = pr->GetRepeatedDouble(pos, counts, i);
    CHECK(c == s.positive_store().BinCount(offset + i));
    total += c;
  }
  CHECK(total == 5);
  const auto& neg = r->GetMessage(*msg, Field(*msg, "negativeValues"));
  CHECK(neg.GetReflection()->GetInt32(neg, Field(neg, "contiguousBinIndexOffset")) == s.mapping().Index(3));

  // libprotobuf's re-serialization decodes back to the same sketch.
  auto again = DDSketch::Decode(msg->SerializeAsString());
  REQUIRE(again.ok());
  CHECK(again->Encode() == s.Encode());
}

TEST_CASE("decode: sparse binCounts map, repeated fields and unknown fields (as libprotobuf writes them)") {
  SchemaPool schema;
  auto msg = schema.NewSketch();
  const auto* r = msg->GetReflection();
  auto* mapping = r->MutableMessage(msg.get(), Field(*msg, "mapping"));
  mapping->GetReflection()->SetDouble(mapping, Field(*mapping, "gamma"), LogarithmicMapping(0.01).gamma());
  auto* pos = r->MutableMessage(msg.get(), Field(*msg, "positiveValues"));
  const auto* pref = pos->GetReflection();
  for (auto [key, value] : std::vector<std::pair<int32_t, double>>{{345, 2}, {-10, 1}, {1036, 0.5}}) {
    auto* e = pref->AddMessage(pos, Field(*pos, "binCounts"));
    e->GetReflection()->SetInt32(e, Field(*e, "key"), key);
    e->GetReflection()->SetDouble(e, Field(*e, "value"), value);
  }
  // Contiguous bins alongside: counts of a bin present in both encodings add up.
  pref->AddDouble(pos, Field(*pos, "contiguousBinCounts"), 1);
  pref->AddDouble(pos, Field(*pos, "contiguousBinCounts"), 0);
  pref->AddDouble(pos, Field(*pos, "contiguousBinCounts"), 4);
  pref->SetInt32(pos, Field(*pos, "contiguousBinIndexOffset"), 344);
  std::string bytes = msg->SerializeAsString();
  bytes += std::string("\xf8\x07\x2a", 3);  // unknown field 127, varint 42

  auto s = DDSketch::Decode(bytes);
  REQUIRE(s.ok());
  CHECK(s->count() == Approx(2 + 1 + 0.5 + 1 + 4));
  CHECK(s->positive_store().BinCount(345) == 2);
  CHECK(s->positive_store().BinCount(344) == 1);
  CHECK(s->positive_store().BinCount(346) == 4);
  CHECK(s->positive_store().BinCount(-10) == 1);
  CHECK(s->positive_store().BinCount(1036) == 0.5);
  CHECK(s->max() == Approx(LogarithmicMapping(0.01).Value(1036)));
}

TEST_CASE("decode: sketches from interpolated mappings (Java-style) are re-indexed") {
  SchemaPool schema;
  // sketches-go's NewLinearlyInterpolatedMapping(0.01): gamma = ((1+a)/(1-a))^ln2, offset = 1/log2(gamma).
  const double a = 0.01;
  const double gamma = std::pow((1 + a) / (1 - a), std::log(2.0));
  const double offset = 1 / std::log2(gamma);
  const double multiplier = 1 / std::log2(gamma);
  auto linear_index = [&](double v) {
    int e;
    const double m = std::frexp(v, &e);  // v = m·2^e, m in [0.5, 1)
    const double approx_log2 = (e - 1) + (2 * m - 1);
    const double idx = approx_log2 * multiplier + offset;
    return idx >= 0 ? static_cast<int32_t>(idx) : static_cast<int32_t>(idx) - 1;
  };
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> d(10, 1);
  std::vector<double> values;
  std::map<int32_t, double> bins;
  for (int i = 0; i < 20000; ++i) {
    values.push_back(d(rng));
    bins[linear_index(values.back())] += 1;
  }
  auto msg = schema.NewSketch();
  const auto* r = msg->GetReflection();
  auto* mapping = r->MutableMessage(msg.get(), Field(*msg, "mapping"));
  const auto* mr = mapping->GetReflection();
  mr->SetDouble(mapping, Field(*mapping, "gamma"), gamma);
  mr->SetDouble(mapping, Field(*mapping, "indexOffset"), offset);
  mr->SetEnumValue(mapping, Field(*mapping, "interpolation"), 1);
  auto* pos = r->MutableMessage(msg.get(), Field(*msg, "positiveValues"));
  for (auto [k, v] : bins) {
    auto* e = pos->GetReflection()->AddMessage(pos, Field(*pos, "binCounts"));
    e->GetReflection()->SetInt32(e, Field(*e, "key"), k);
    e->GetReflection()->SetDouble(e, Field(*e, "value"), v);
  }
  auto s = DDSketch::Decode(msg->SerializeAsString());
  REQUIRE(s.ok());
  std::sort(values.begin(), values.end());
  CHECK(s->count() == 20000);
  for (double q : kQuantiles) {
    const double exact = ExactQuantile(values, q);
    CHECK(std::abs(*s->Quantile(q) - exact) <= 0.021 * exact);
  }
}

TEST_CASE("decode: round trip keeps bins, counts and signs") {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> d(100, 5000);
  DDSketch s;
  for (int i = 0; i < 10000; ++i) s.Add(d(rng), 1 + (i % 3));
  s.Add(0, 2);
  auto back = DDSketch::Decode(s.Encode());
  REQUIRE(back.ok());
  CHECK(back->count() == s.count());
  CHECK(back->zero_count() == 2);
  CHECK(back->Encode() == s.Encode());
  for (double q : kQuantiles) {
    CHECK(std::abs(*back->Quantile(q) - *s.Quantile(q)) <= 0.0201 * std::abs(*s.Quantile(q)) + 1e-9);
  }
  // Sum, min and max come back estimated from bin values.
  CHECK(back->max() == Approx(s.max()).epsilon(0.011));

  DDSketch merged;
  REQUIRE(merged.DecodeAndMerge(s.Encode()).ok());
  REQUIRE(merged.DecodeAndMerge(s.Encode()).ok());
  CHECK(merged.count() == 2 * s.count());
}

TEST_CASE("decode: malformed input is rejected with a reason") {
  DDSketch s;
  s.Add(12);
  const std::string good = s.Encode();
  for (size_t cut = 1; cut < good.size(); ++cut) {
    // Truncations either fail or (when cut at a field boundary) decode a prefix; never crash.
    auto r = DDSketch::Decode(good.substr(0, cut));
    if (r.ok()) CHECK(r->count() <= 1);
  }
  CHECK(DDSketch::Decode("").status().message().find("no index mapping") != std::string::npos);
  // gamma = 0.5
  std::string bad_gamma("\x0a\x09\x09\x00\x00\x00\x00\x00\x00\xe0\x3f", 11);
  CHECK(DDSketch::Decode(bad_gamma).status().message().find("gamma") != std::string::npos);
  // Negative count in a contiguous store.
  std::string neg = good;
  neg[22] = static_cast<char>(0xbf);  // 1.0 -> -1.0 (sign bit of the first count)
  CHECK(DDSketch::Decode(neg).status().message().find("invalid bin count") != std::string::npos);
  // Length past the end.
  CHECK_FALSE(DDSketch::Decode(std::string("\x12\x7f\x00", 3)).ok());
  // Wrong wire type for the mapping.
  CHECK_FALSE(DDSketch::Decode(std::string("\x08\x01", 2)).ok());
  // Group wire types are refused.
  CHECK_FALSE(DDSketch::Decode(std::string("\x0b\x0c", 2)).ok());
  // Quadratic interpolation does not exist in sketches-go.
  std::string quad = good.substr(0, 11);
  quad[1] = 0x0b;
  quad += std::string("\x18\x02", 2);
  CHECK(DDSketch::Decode(quad).status().code() == absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace dogwatch::sketch
