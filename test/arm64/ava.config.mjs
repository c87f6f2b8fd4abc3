// ava as arm64 under qemu-user (npm run test:arm64): worker threads, because a test process
// cannot start another arm64 process there (without binfmt_misc the host kernel cannot exec it).
export default {
  files: ["dist/test/recorded-oracle.test.js"],
  timeout: "10m",
  workerThreads: true,
};
