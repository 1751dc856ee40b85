# A File on standard input (stdin), counted; an optional output that no glob finds is null.
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
