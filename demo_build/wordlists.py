"""Common words of the spoken-language demo, one list per espeak-ng language code.

Each list holds everyday words (family, home, nature, animals, food, colours, numbers 1-10,
pronouns, a few verbs and greetings) in the orthography espeak-ng reads for that language:
Armenian script (hy), Cyrillic (tt, cv, ky, sr, ru), Kurmanji Latin (ku), Ge'ez script (am),
Georgian script (ka) and Latin (af, sw, om, tn, az, tr). Sentences of the demo corpus are random
word sequences drawn from these lists, so they sound like the language without meaning anything.
"""

from __future__ import annotations

from types import MappingProxyType

#: English names of the languages (espeak-ng voice codes).
LANGUAGE_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "hy": "Armenian",
        "tt": "Tatar",
        "cv": "Chuvash",
        "ky": "Kyrgyz",
        "sr": "Serbian",
        "ku": "Kurmanji Kurdish",
        "af": "Afrikaans",
        "am": "Amharic",
        "sw": "Swahili",
        "om": "Oromo",
        "tn": "Setswana",
        "ka": "Georgian",
        "az": "Azerbaijani",
        "ru": "Russian",
        "tr": "Turkish",
    }
)

#: Languages written without a case distinction (no capital at the start of a sentence).
CASELESS: frozenset[str] = frozenset({"am", "ka"})

_RAW: dict[str, str] = {
    "hy": """
        մայր հայր եղբայր քույր տուն ջուր հաց գիրք դպրոց քաղաք գյուղ երկիր աշխարհ մարդ կին
        տղամարդ երեխա ընկեր սեր կյանք օր գիշեր առավոտ երեկո տարի ամիս շաբաթ ժամ ժամանակ արև
        լուսին աստղ երկինք ծով լիճ գետ լեռ ծառ ծաղիկ անտառ դաշտ քար կրակ քամի անձրև ձյուն
        ճանապարհ դուռ պատուհան սեղան աթոռ մեքենա գնացք նավ շուն կատու ձի կով թռչուն ձուկ միս
        կաթ պանիր գինի խնձոր ծիրան խաղող աշխատանք լեզու խոսք անուն երգ պար մեծ փոքր լավ վատ
        նոր հին գեղեցիկ սպիտակ սև կարմիր կանաչ կապույտ տաք ցուրտ մեկ երկու երեք չորս հինգ
        վեց յոթ ութ ինը տասը այո ոչ և բայց այստեղ այնտեղ այսօր վաղը երեկ ես դու նա մենք
        գնալ գալ ուտել խմել տեսնել գրել կարդալ խոսել սիրել աշխատել շնորհակալություն բարև
    """,
    "tt": """
        әни әти абый апа өй су икмәк китап мәктәп шәһәр авыл ил дөнья кеше хатын ир бала дус
        мәхәббәт тормыш көн төн иртә кич ел ай атна сәгать вакыт кояш йолдыз күк диңгез күл
        елга тау агач чәчәк урман кыр таш ут җил яңгыр кар юл ишек тәрәзә өстәл урындык машина
        поезд көймә эт мәче ат сыер кош балык ит сөт эремчек алма чия эш тел сүз исем җыр бию
        зур кечкенә яхшы начар яңа иске матур ак кара кызыл яшел зәңгәр җылы салкын бер ике өч
        дүрт биш алты җиде сигез тугыз ун әйе юк һәм ләкин монда анда бүген иртәгә кичә мин
        син ул без бару килү ашау эчү күрү язу уку сөйләү рәхмәт сәлам
    """,
    "cv": """
        анне атте пиччӗ аппа кил пӳрт шыв ҫӑкӑр кӗнеке шкул хула ял ҫӗршыв тӗнче ҫын хӗрарӑм
        арҫын ача тус юрату пурнӑҫ кун ҫӗр ир каҫ ҫул уйӑх эрне сехет вӑхӑт хӗвел ҫӑлтӑр тӳпе
        тинӗс кӳлӗ юханшыв ту йывӑҫ чечек вӑрман уй чул вут ҫил ҫумӑр юр алӑк чӳрече сӗтел
        пукан машина пуйӑс кимӗ йытӑ кушак лаша ӗне кайӑк пулӑ аш сӗт чӑкӑт улма ӗҫ чӗлхе сӑмах
        ят юрӑ ташӑ пысӑк пӗчӗк лайӑх начар ҫӗнӗ кивӗ хитре шурӑ хура хӗрлӗ симӗс кӑвак ӑшӑ
        сивӗ пӗр иккӗ виҫҫӗ тӑваттӑ пиллӗк улттӑ ҫиччӗ саккӑр тӑххӑр вуннӑ ҫапла ҫук тата анчах
        кунта унта паян ыран ӗнер эпӗ эсӗ вӑл эпир кай ҫи кур ҫыр вула калаҫ тав сывлӑх
    """,
    "ky": """
        апа ата ага эже үй суу нан китеп мектеп шаар айыл өлкө дүйнө адам аял эркек бала дос
        сүйүү жашоо күн түн таң кеч жыл ай жума саат убакыт жылдыз асман деңиз көл дарыя тоо
        дарак гүл токой талаа таш от шамал жамгыр кар жол эшик терезе стол отургуч машина
        поезд кеме ит мышык ат уй куш балык эт сүт сыр алма жумуш тил сөз ысым ыр бий чоң
        кичинекей жакшы жаман жаңы эски сулуу ак кара кызыл жашыл көк жылуу суук бир эки үч
        төрт беш алты жети сегиз тогуз он ооба жок жана бирок бул ошол бүгүн эртең кечээ мен
        сен ал биз баруу келүү жеш ичүү көрүү жазуу окуу сүйлөө рахмат салам кымыз
    """,
    "sr": """
        мајка отац брат сестра кућа вода хлеб књига школа град село земља свет човек жена
        мушкарац дете пријатељ љубав живот дан ноћ јутро вече година месец недеља сат време
        сунце звезда небо море језеро река планина дрво цвет шума поље камен ватра ветар киша
        снег пут врата прозор сто столица аутомобил воз брод пас мачка коњ крава птица риба
        месо млеко сир јабука грожђе посао језик реч име песма игра велики мали добар лош нов
        стар леп бео црн црвен зелен плав топао хладан један два три четири пет шест седам
        осам девет десет да не и али овде тамо данас сутра јуче ја ти он ми ићи доћи јести
        пити видети писати читати говорити хвала здраво
    """,
    "ku": """
        dayik bav bira xwişk mal av nan pirtûk dibistan bajar gund welat dinya mirov jin mêr
        zarok heval evîn jiyan roj şev sibe êvar sal meh hefte saet dem hîv stêrk ezman derya
        gol çem çiya dar kulîlk daristan zevî kevir agir ba baran berf rê derî pencere mase
        kursî erebe trên keştî se pisîk hesp çêlek çûk masî goşt şîr penêr sêv tirî kar ziman
        peyv nav stran dîlan mezin biçûk baş xirab nû kevn xweşik spî reş sor kesk şîn germ
        sar yek du sê çar pênc şeş heft heşt neh deh erê na û lê vir wir îro duh ez tu ew em
        çûn hatin xwarin vexwarin dîtin nivîsîn xwendin axaftin spas silav
    """,
    "af": """
        moeder vader broer suster huis water brood boek skool stad dorp land wêreld mens vrou
        man kind vriend liefde lewe dag nag oggend aand jaar maand week uur tyd son maan ster
        hemel see meer rivier berg boom blom bos veld klip vuur wind reën sneeu pad deur
        venster tafel stoel motor trein skip hond kat perd koei voël vis vleis melk kaas appel
        druiwe werk taal woord naam lied dans groot klein goed sleg nuut oud mooi wit swart
        rooi groen blou warm koud een twee drie vier vyf ses sewe agt nege tien ja nee en maar
        hier daar vandag môre gister ek jy hy ons gaan kom eet drink sien skryf lees praat
        dankie hallo baie altyd nooit saam lekker
    """,
    "am": """
        እናት አባት ወንድም እህት ቤት ውሃ ዳቦ መጽሐፍ ትምህርት ከተማ መንደር አገር ዓለም ሰው ሴት ወንድ ልጅ
        ጓደኛ ፍቅር ሕይወት ቀን ሌሊት ጠዋት ማታ ዓመት ወር ሳምንት ሰዓት ጊዜ ፀሐይ ጨረቃ ኮከብ ሰማይ ባሕር
        ሐይቅ ወንዝ ተራራ ዛፍ አበባ ጫካ እርሻ ድንጋይ እሳት ነፋስ ዝናብ በረዶ መንገድ በር መስኮት ጠረጴዛ
        ወንበር መኪና ባቡር መርከብ ውሻ ድመት ፈረስ ላም ወፍ ዓሣ ሥጋ ወተት አይብ ቡና ሻይ እንጀራ ሥራ ቋንቋ
        ቃል ስም ዘፈን ጭፈራ ትልቅ ትንሽ ጥሩ መጥፎ አዲስ አሮጌ ቆንጆ ነጭ ጥቁር ቀይ አረንጓዴ ሰማያዊ ሞቃት
        ቀዝቃዛ አንድ ሁለት ሶስት አራት አምስት ስድስት ሰባት ስምንት ዘጠኝ አስር አዎ አይ እና ግን እዚህ
        እዚያ ዛሬ ነገ ትናንት እኔ አንተ እሱ እኛ መሄድ መምጣት መብላት መጠጣት ማየት መጻፍ ማንበብ መናገር
        አመሰግናለሁ ሰላም
    """,
    "sw": """
        mama baba kaka dada nyumba maji mkate kitabu shule mji kijiji nchi dunia mtu mwanamke
        mwanamume mtoto rafiki upendo maisha siku usiku asubuhi jioni mwaka mwezi wiki saa
        wakati jua nyota anga bahari ziwa mto mlima mti ua msitu shamba jiwe moto upepo mvua
        barabara mlango dirisha meza kiti gari treni meli mbwa paka farasi ndege samaki
        nyama maziwa jibini tufaha ndizi chai kahawa kazi lugha neno jina wimbo ngoma kubwa
        ndogo nzuri mbaya mpya zamani nyeupe nyeusi nyekundu kijani bluu joto baridi moja
        mbili tatu nne tano sita saba nane tisa kumi ndiyo hapana na lakini hapa pale leo kesho
        jana mimi wewe yeye sisi kwenda kuja kula kunywa kuona kuandika kusoma kusema asante
        habari karibu sana chakula safari
    """,
    "om": """
        haadha abbaa obboleessa obboleettii mana bishaan buddeena kitaaba barumsa magaalaa
        gandaa biyya addunyaa nama dubartii dhiira daa'ima hiriyaa jaalala jireenya guyyaa
        halkan ganama galgala waggaa ji'a torban sa'aatii yeroo aduu urjii samii galaana haroo
        laga tulluu muka abaaboo bosona lafa dhagaa ibidda qilleensa rooba daandii balbala
        foddaa minjaala teessoo konkolaataa doonii saree adurree farda sa'a simbirroo
        qurxummii foon aannan buna shaayii hojii afaan jecha maqaa sirba guddaa xiqqaa gaarii
        hamaa haaraa moofaa bareedaa adii gurraacha diimaa magariisa cuquliisa ho'aa
        qabbanaawaa tokko lama sadii afur shan jaha torba saddeet sagal kudhan eeyyee lakki fi
        garuu as achi har'a boru kaleessa ani ati inni nuti deemuu dhufuu nyaachuu dhuguu arguu
        barreessuu dubbisuu dubbachuu galatoomi akkam nagaa baay'ee beekumsa barataa barsiisaa
    """,
    "tn": """
        mme rre kgaitsadi ntlo metsi borotho buka sekolo toropo motse lefatshe batho motho
        mosadi monna ngwana tsala lorato botshelo letsatsi bosigo moso maitseboa ngwaga kgwedi
        beke ura nako naledi legodimo lewatle letamo noka thaba setlhare sethunya sekgwa tshimo
        lentswe molelo phefo pula kapoko tsela lebati fensetere tafole setulo koloi terene
        sekepe ntša katse pitse kgomo nonyane tlhapi nama mashi tšhese apole tiro puo lefoko
        leina pina bina kgolo nnye siame bosula ntšhwa kgale ntle tshweu ntsho khibidu tala
        bothitho tsididi nngwe pedi tharo nne tlhano thataro supa robedi robongwe lesome ee
        nnyaa le fano koo gompieno kamoso maabane nna wena ene rona tsamaya tla ja nwa bona
        kwala bala bua leboga dumela kgotso thuto morutabana moithuti dijo madi dikgomo
    """,
    "ka": """
        დედა მამა ძმა და სახლი წყალი პური წიგნი სკოლა ქალაქი სოფელი ქვეყანა სამყარო ადამიანი
        ქალი კაცი ბავშვი მეგობარი სიყვარული სიცოცხლე დღე ღამე დილა საღამო წელი თვე კვირა საათი
        დრო მზე მთვარე ვარსკვლავი ცა ზღვა ტბა მდინარე მთა ხე ყვავილი ტყე მინდორი ქვა ცეცხლი
        ქარი წვიმა თოვლი გზა კარი ფანჯარა მაგიდა სკამი მანქანა მატარებელი გემი ძაღლი კატა
        ცხენი ძროხა ჩიტი თევზი ხორცი რძე ყველი ვაშლი ყურძენი ღვინო სამუშაო ენა სიტყვა სახელი
        სიმღერა ცეკვა დიდი პატარა კარგი ცუდი ახალი ძველი ლამაზი თეთრი შავი წითელი მწვანე
        ლურჯი თბილი ცივი ერთი ორი სამი ოთხი ხუთი ექვსი შვიდი რვა ცხრა ათი კი არა მაგრამ აქ
        იქ დღეს ხვალ გუშინ მე შენ ის ჩვენ წასვლა მოსვლა ჭამა დალევა ნახვა წერა კითხვა
        ლაპარაკი მადლობა გამარჯობა
    """,
    "az": """
        ana ata qardaş bacı ev su çörək kitab məktəb şəhər kənd ölkə dünya insan qadın kişi
        uşaq dost sevgi həyat gün gecə səhər axşam il ay həftə saat vaxt ulduz göy dəniz göl
        çay dağ ağac gül meşə tarla daş od külək yağış qar yol qapı pəncərə stol stul maşın
        qatar gəmi it pişik at inək quş balıq ət süd pendir alma üzüm iş dil söz ad mahnı rəqs
        böyük kiçik yaxşı pis yeni köhnə gözəl ağ qara qırmızı yaşıl mavi isti soyuq bir iki
        üç dörd beş altı yeddi səkkiz doqquz on bəli xeyr və amma burada orada sabah dünən
        mən sən o biz getmək gəlmək yemək içmək görmək yazmaq oxumaq danışmaq təşəkkür salam
    """,
    "ru": """
        мама папа брат сестра дом вода хлеб книга школа город деревня страна мир человек
        женщина мужчина ребёнок друг любовь жизнь день ночь утро вечер год месяц неделя час
        время солнце луна звезда небо море озеро река гора дерево цветок лес поле камень огонь
        ветер дождь снег дорога дверь окно стол стул машина поезд корабль собака кошка лошадь
        корова птица рыба мясо молоко сыр яблоко виноград работа язык слово имя песня танец
        большой маленький хороший плохой новый старый красивый белый чёрный красный зелёный
        синий тёплый холодный один два три четыре пять шесть семь восемь девять десять да нет
        и но здесь там сегодня завтра вчера я ты он мы идти прийти есть пить видеть писать
        читать говорить спасибо привет
    """,
    "tr": """
        anne baba kardeş abla ev su ekmek kitap okul şehir köy ülke dünya insan kadın adam
        çocuk arkadaş sevgi hayat gün gece sabah akşam yıl ay hafta saat zaman güneş yıldız
        gök deniz göl nehir dağ ağaç çiçek orman tarla taş ateş rüzgar yağmur kar yol kapı
        pencere masa sandalye araba tren gemi köpek kedi at inek kuş balık et süt peynir elma
        üzüm iş dil kelime isim şarkı dans büyük küçük iyi kötü yeni eski güzel beyaz siyah
        kırmızı yeşil mavi sıcak soğuk bir iki üç dört beş altı yedi sekiz dokuz on evet hayır
        ve ama burada orada bugün yarın dün ben sen o biz gitmek gelmek yemek içmek görmek
        yazmak okumak konuşmak teşekkürler merhaba
    """,
}


def _unique(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text.split()))


#: Vocabulary per language code: unique words in a fixed order.
WORDS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {lang: _unique(text) for lang, text in _RAW.items()}
)


def words(language: str) -> tuple[str, ...]:
    """The vocabulary of ``language`` (an espeak-ng code); KeyError names the known codes."""
    try:
        return WORDS[language]
    except KeyError:
        raise KeyError(
            f"no word list for {language!r}; known: {', '.join(sorted(WORDS))}"
        ) from None
