# A File on standard input, counted: faice mounts the File but does not feed it to the tool yet (a bug; see tests/test_cwltest.py).
cwlVersion: v1.1
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
baseCommand: [wc, -l]
stdin: $(inputs.f.path)
inputs:
  f: File
outputs:
  lines:
    type: stdout
  missing:
    type: File?
    outputBinding:
      glob: not-written.txt
stdout: lines.txt
