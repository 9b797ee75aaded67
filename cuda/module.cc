// pybind11 module `pythia._kv_cuda`: the CUDA KV page copies (kv_transfer.h). Imports without a
// GPU; a copy then fails with RuntimeError naming the CUDA error.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kv_transfer.h"

namespace py = pybind11;
using Int32Array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

namespace {

using Copy = void (*)(const std::vector<uint64_t>&, int64_t, uint64_t, int64_t, int64_t, const int32_t*, int64_t,
                      bool, uint64_t);

auto bind_copy(Copy copy) {
  return [copy](const std::vector<uint64_t>& device_buffers, int64_t num_device_pages, uint64_t host,
                int64_t num_host_pages, int64_t page_bytes, const Int32Array& pairs, bool to_host, uint64_t stream) {
    const int32_t* data = pairs.data();
    const auto n = static_cast<int64_t>(pairs.size());
    py::gil_scoped_release release;
    copy(device_buffers, num_device_pages, host, num_host_pages, page_bytes, data, n, to_host, stream);
  };
}

}  // namespace

PYBIND11_MODULE(_kv_cuda, m) {
  m.doc() = "CUDA KV page copies between a layer-first device pool and a page-first pinned host pool.";
  m.def("copy_kv_pages", bind_copy(&pythia::cuda::copy_kv_pages_layer_first_page_first), py::arg("device_buffers"),
        py::arg("num_device_pages"), py::arg("host"), py::arg("num_host_pages"), py::arg("page_bytes"),
        py::arg("pairs"), py::arg("to_host"), py::arg("stream") = 0,
        "Copy pages for flattened (source, destination) pairs, all buffers in one launch on `stream`.");
  m.def("memcpy_kv_pages", bind_copy(&pythia::cuda::memcpy_kv_pages_layer_first_page_first),
        py::arg("device_buffers"), py::arg("num_device_pages"), py::arg("host"), py::arg("num_host_pages"),
        py::arg("page_bytes"), py::arg("pairs"), py::arg("to_host"), py::arg("stream") = 0,
        "The same copies as one cudaMemcpyAsync per page and buffer (the reference).");
  m.def("device_available", &pythia::cuda::device_available, "Whether a CUDA device is usable.");
}
