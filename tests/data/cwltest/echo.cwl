# A string input echoed to a stdout output; its default when the job gives none.
cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
baseCommand: echo
inputs:
  message:
    type: string
    default: from the default
    inputBinding: {position: 1}
outputs:
  out:
    type: stdout
stdout: out.txt
