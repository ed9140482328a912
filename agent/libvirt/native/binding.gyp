{
  "targets": [
    {
      "target_name": "hostvisor_libvirt",
      "sources": [
        "src/addon.cc",
        "src/async_call.cc",
        "src/errors.cc",
        "src/handles.cc",
        "src/typed_params.cc",
        "src/event_loop.cc",
        "src/connect.cc",
        "src/domain.cc",
        "src/domain_ops.cc",
        "src/domain_guest.cc",
        "src/domain_snapshot.cc",
        "src/domain_blockjob.cc",
        "src/events.cc",
        "src/sanlock.cc", "src/sanlock_lockspace.cc",
        "src/process_memory.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["<!@(pkg-config --libs libvirt libvirt-qemu)", "-lsanlock"],
      "cflags": ["<!@(pkg-config --cflags libvirt)"]
    }
  ]
}
