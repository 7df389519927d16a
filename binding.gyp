{
  "targets": [
    {
      "target_name": "xlb",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/common.cc",
        "native/object.cc",
        "native/map.cc",
        "native/program.cc",
        "native/link.cc",
        "native/packet.cc",
        "native/libbpf_stderr.c"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      # libbpf comes from Debian's libbpf-dev archive so the addon carries exactly the
      # version it was tested with; -l: keeps the path arch-independent.
      "libraries": ["-l:libbpf.a", "-lelf", "-lz"],
      # Keep libbpf's symbols private to the addon instead of exporting them.
      "ldflags": ["-Wl,--exclude-libs,libbpf.a"]
    }
  ]
}
