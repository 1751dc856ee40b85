cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
requirements:
  - class: DockerRequirement
    dockerPull: busybox
  - class: TeleportRequirement
inputs:
  message:
    type: strng
outputs: []
