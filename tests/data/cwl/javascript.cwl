cwlVersion: v1.2
class: CommandLineTool
requirements:
  InlineJavascriptRequirement: {}
  InitialWorkDirRequirement:
    listing:
      - entryname: settings.txt
        entry: $(inputs.level)
baseCommand: cat
arguments:
  - valueFrom: ${ return inputs.level * 2; }
inputs:
  level: int
outputs:
  out:
    type: File
    outputBinding:
      glob: $(runtime.outdir)/*.txt
